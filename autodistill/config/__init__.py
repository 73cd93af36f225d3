"""Configuration: typed plan records, YAML sections, and the loader."""

from autodistill.config.distillation import DistillationSection
from autodistill.config.loader import load_distillation_plan, read_yaml, validate
from autodistill.config.plan import (
    DistillationPlan,
    LayerMapping,
    LogitKD,
    OptimizerSpec,
    ScheduleSpec,
    Stage,
)

__all__ = [
    "DistillationPlan", "DistillationSection", "LayerMapping", "LogitKD", "OptimizerSpec",
    "ScheduleSpec", "Stage", "load_distillation_plan", "read_yaml", "validate",
]
