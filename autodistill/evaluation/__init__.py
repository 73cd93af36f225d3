"""Evaluation of students: accuracy (latency comes with the search service)."""

from autodistill.evaluation.accuracy import accuracy

__all__ = ["accuracy"]
