"""Distillation: the training loop over stages, optimisers, schedules, callbacks."""

from autodistill.data.adaptor import DataAdaptor, ModelInputs
from autodistill.distill.callbacks import DistillationCallback, DistillationControl, DistillationState
from autodistill.distill.distiller import Distiller, FitResult, StageRecord

__all__ = [
    "DataAdaptor", "DistillationCallback", "DistillationControl", "DistillationState",
    "Distiller", "FitResult", "ModelInputs", "StageRecord",
]
