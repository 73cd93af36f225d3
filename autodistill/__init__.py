"""autodistill: knowledge-distillation-driven neural architecture search.

The public API; everything else is an implementation detail.
"""

from autodistill.capture import FeatureCapture
from autodistill.config import DistillationPlan, DistillationSection, load_distillation_plan
from autodistill.distill import DataAdaptor, DistillationCallback, Distiller, FitResult
from autodistill.errors import (
    AutodistillError,
    CaptureError,
    ConfigError,
    MappingError,
    NonFiniteLossError,
)
from autodistill.losses import LOSSES, TARGET_LOSSES, FeatureMatchers, LossContext
from autodistill.space import Architecture, SearchSpace
from autodistill.study.search import AutoDistillation

__all__ = [
    "Architecture", "AutoDistillation", "SearchSpace",
    "LOSSES", "TARGET_LOSSES", "AutodistillError", "CaptureError", "ConfigError", "DataAdaptor",
    "DistillationCallback", "DistillationPlan", "DistillationSection", "Distiller",
    "FeatureCapture", "FeatureMatchers", "FitResult", "LossContext", "MappingError",
    "NonFiniteLossError", "load_distillation_plan",
]
