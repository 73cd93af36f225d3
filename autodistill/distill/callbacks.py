"""Events of a distillation run, for whoever drives it (the search loop, a logger, a user).

Like transformers' TrainerCallback: every event does nothing by default, and a
callback may set `control.should_stop` to end the run early (the search uses it to
prune a trial).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from autodistill.config.plan import Stage


@dataclass
class DistillationState:
    stage_index: int = -1
    stage: Stage | None = None
    step: int = 0
    total_steps: int = 0
    global_step: int = 0
    loss: float = float("nan")
    terms: dict[str, float] = field(default_factory=dict)
    learning_rate: float = 0.0
    grad_norm: float | None = None  # where clipping or a logger measured it
    epoch: float = 0.0  # train-loader passes so far (fractional); 0 for a loader without a length
    steps_per_second: float = 0.0  # of the stage so far
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # the latest evaluation, per set


@dataclass
class DistillationControl:
    should_stop: bool = False


class DistillationCallback:
    def on_fit_begin(self, state: DistillationState, control: DistillationControl) -> None: ...
    def on_stage_begin(self, state: DistillationState, control: DistillationControl) -> None: ...
    def on_step_end(self, state: DistillationState, control: DistillationControl) -> None: ...
    def on_evaluate(self, state: DistillationState, control: DistillationControl) -> None: ...
    def on_stage_end(self, state: DistillationState, control: DistillationControl) -> None: ...
    def on_fit_end(self, state: DistillationState, control: DistillationControl) -> None: ...


class CallbackList:
    def __init__(self, callbacks: Sequence[DistillationCallback]) -> None:
        self.callbacks = list(callbacks)

    def fire(self, event: str, state: DistillationState, control: DistillationControl) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(state, control)
