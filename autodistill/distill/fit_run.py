"""What the event handlers of one `Distiller.fit` share: the records, the data position, the
running stage's training state and its active feature captures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from autodistill.capture import FeatureCapture
from autodistill.distill.callbacks import CallbackList
from autodistill.distill.records import FitResult
from autodistill.distill.train_batches import TrainBatches


class TrainingState(Protocol):
    def state_dict(self) -> dict[str, Any]: ...


@dataclass
class FitRun:
    result: FitResult
    batches: TrainBatches
    callbacks: CallbackList = field(default_factory=lambda: CallbackList(()))  # every handler, in order
    stage: TrainingState | None = None  # the running stage's optimiser, schedule and scaler
    captures: list[FeatureCapture] = field(default_factory=list)  # hooked while the stage steps
