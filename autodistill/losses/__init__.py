"""Losses: the registries, the built-in losses, matchers, and a stage's weighted loss."""

from autodistill.losses.matchers import FeatureMatchers
from autodistill.losses.registry import LOSSES, TARGET_LOSSES, LossContext

__all__ = ["LOSSES", "TARGET_LOSSES", "FeatureMatchers", "LossContext"]
