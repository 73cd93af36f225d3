"""Evaluation during training, as an event handler of `Distiller.fit`: every `eval_every_steps`
global steps and at each stage end, the student is scored on every evaluation set; the metrics go
into `FitResult.evaluations`, the log and `state.metrics`, and `on_evaluate` is announced.
Evaluation leaves training's random stream as it was."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from autodistill.capture import FeatureCapture
from autodistill.distill.callbacks import DistillationCallback, DistillationControl, DistillationState
from autodistill.distill.fit_run import FitRun
from autodistill.distill.records import Evaluation

log = logging.getLogger(__name__)

EvalFn = Callable[[nn.Module, Iterable[Any]], Mapping[str, float] | float]


def eval_sets(loaders: Mapping[str, Iterable[Any]] | Iterable[Any] | None) -> dict[str, Iterable[Any]]:
    """{name: loader}; one loader is the set "validation"."""
    if loaders is None:
        return {}
    if isinstance(loaders, Mapping):
        return dict(loaders)
    return {"validation": loaders}


@contextmanager
def _detached(captures: Sequence[FeatureCapture]) -> Iterator[None]:
    """The captures' hooks off (an evaluation runs whole forwards), then on again."""
    for capture in captures:
        capture.__exit__(None, None, None)
    try:
        yield
    finally:
        for capture in captures:
            capture.__enter__()


class EvaluationHandler(DistillationCallback):
    """Scores `student` on `sets` with `fn` every `every` global steps (0: only at stage ends)."""

    def __init__(self, run: FitRun, student: nn.Module, sets: dict[str, Iterable[Any]], fn: EvalFn, *,
                 every: int, device: torch.device) -> None:
        self.run, self.student, self.sets, self.fn, self.every, self.device = run, student, sets, fn, every, device

    def on_step_end(self, state: DistillationState, control: DistillationControl) -> None:
        if self.every > 0 and state.global_step % self.every == 0 and state.step < state.total_steps:
            with _detached(self.run.captures):  # the stage end evaluates its last step
                self.evaluate(state, control)

    def on_stage_end(self, state: DistillationState, control: DistillationControl) -> None:
        if not control.should_stop:
            self.evaluate(state, control)

    def evaluate(self, state: DistillationState, control: DistillationControl) -> None:
        """Evaluate the student on every set; record, log and announce the metrics."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # training's random stream stays as it was
            metrics = {}
            for name, loader in self.sets.items():
                value = self.fn(self.student, loader)
                metrics[name] = ({k: float(v) for k, v in value.items()} if isinstance(value, Mapping)
                                 else {"score": float(value)})
        evaluation = Evaluation(state.stage.name if state.stage else "", state.global_step, metrics)
        self.run.result.evaluations.append(evaluation)
        state.metrics = metrics
        log.info("step %d (%s): %s", evaluation.global_step, evaluation.stage,
                 "; ".join(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items())
                           for name, m in metrics.items()))
        self.run.callbacks.fire("on_evaluate", state, control)
