"""autodistill: knowledge-distillation-driven neural architecture search.

The public API; everything else is an implementation detail. Names are imported on first
use (PEP 562), so `import autodistill` and `autodistill --help` load neither torch nor Optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autodistill.lazy_exports import lazy_exports

# public name -> the module that defines it
_EXPORTS = {
    "FeatureCapture": "autodistill.capture",
    "DistillationPlan": "autodistill.config",
    "DistillationSection": "autodistill.config",
    "load_distillation_plan": "autodistill.config",
    "DataAdaptor": "autodistill.distill",
    "DistillationCallback": "autodistill.distill",
    "Distiller": "autodistill.distill",
    "FitResult": "autodistill.distill",
    "AutodistillError": "autodistill.errors",
    "CaptureError": "autodistill.errors",
    "ConfigError": "autodistill.errors",
    "MappingError": "autodistill.errors",
    "NonFiniteLossError": "autodistill.errors",
    "LOSSES": "autodistill.losses",
    "TARGET_LOSSES": "autodistill.losses",
    "FeatureMatchers": "autodistill.losses",
    "LossContext": "autodistill.losses",
    "Architecture": "autodistill.space",
    "SearchSpace": "autodistill.space",
    "AutoDistillation": "autodistill.study.search",
    "DistillationTrainer": "autodistill.study.trainer_search",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from autodistill.capture import FeatureCapture
    from autodistill.config import DistillationPlan, DistillationSection, load_distillation_plan
    from autodistill.distill import DataAdaptor, DistillationCallback, Distiller, FitResult
    from autodistill.errors import AutodistillError, CaptureError, ConfigError, MappingError, NonFiniteLossError
    from autodistill.losses import LOSSES, TARGET_LOSSES, FeatureMatchers, LossContext
    from autodistill.space import Architecture, SearchSpace
    from autodistill.study.search import AutoDistillation
    from autodistill.study.trainer_search import DistillationTrainer
