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


EVENTS = ("on_fit_begin", "on_stage_begin", "on_step_end", "on_evaluate", "on_stage_end", "on_fit_end")


def handles(callback: object, event: str) -> bool:
    """Whether `callback` does something on `event` (defines it other than as the no-op default)."""
    method = getattr(callback, event, None)
    return method is not None and getattr(method, "__func__", None) is not getattr(DistillationCallback, event)


class CallbackList:
    """The callbacks in order; an event goes only to those that handle it (`handles`), a list made
    once here, so a step does not call every callback's no-op."""

    def __init__(self, callbacks: Sequence[DistillationCallback]) -> None:
        self.callbacks = list(callbacks)
        self._handlers = {event: [getattr(c, event) for c in self.callbacks if handles(c, event)]
                          for event in EVENTS}

    def fire(self, event: str, state: DistillationState, control: DistillationControl) -> None:
        for handler in self._handlers[event]:
            handler(state, control)
