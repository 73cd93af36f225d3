"""Evaluation of students: accuracy, and latency as a benchmark (with size counts)."""

from autodistill.evaluation.accuracy import accuracy
from autodistill.evaluation.latency import (
    Latency,
    LatencySpec,
    count_parameters,
    measure_latencies,
    measure_latency,
    model_size_mb,
)

__all__ = [
    "Latency",
    "LatencySpec",
    "accuracy",
    "count_parameters",
    "measure_latencies",
    "measure_latency",
    "model_size_mb",
]
