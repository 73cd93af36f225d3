"""Losses: the registries, the built-in losses, matchers, and a stage's weighted loss."""

from autodistill.losses.builtin import register_builtin_losses
from autodistill.losses.matchers import FeatureMatchers
from autodistill.losses.registry import LOSSES, TARGET_LOSSES, LossContext

register_builtin_losses()

__all__ = ["LOSSES", "TARGET_LOSSES", "FeatureMatchers", "LossContext", "register_builtin_losses"]
