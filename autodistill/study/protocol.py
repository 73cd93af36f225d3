"""What the search needs of the problem it searches for: one `Task` object.

    class MyTask:                                  # or subclass nothing: it is a Protocol
        measures_cost = True                       # cost() times the untrained student
        stops_early = False                        # train() takes no early-stopping callbacks
        def build(self, architecture): ...        # -> nn.Module (InvalidArchitecture if none can exist)
        def cost(self, model): ...                 # -> {"latency_ms": ..., "params": ...} before training
        def train(self, model, callbacks=()): ...  # -> TrainedStudent
        def evaluate(self, model): ...             # -> {"accuracy": ...}
        def checkpoint_score(self, model): ...     # -> validation accuracy during training (early stopping)
        def save(self, student, directory): ...
        def teacher_figures(self, recorded): ...   # -> the study's teacher row (measured once per study)

    AutoDistillation(MyTask(), search_section, storage_url=..., study_name=..., output_dir=...)

The built-in `autodistill.study.task.DistillationTask` implements it (flash then regular
distillation of Hugging Face students from a teacher and data files). Seed 003's function-style
API (`AutoDistillation(model_builder, config, train_func=..., eval_func=...)`) is `FunctionTask`,
an adapter onto it: each callable becomes one method.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from torch import nn

from autodistill.distill.callbacks import DistillationCallback
from autodistill.errors import ConfigError
from autodistill.evaluation.latency import (
    Latency,
    LatencySpec,
    count_parameters,
    measure_latency,
    model_size_mb,
)
from autodistill.models.saving import save_model
from autodistill.objectives import ACCURACY, LATENCY_P50, LATENCY_P90, PARAMS, SIZE, Metric
from autodistill.space import Architecture


@dataclass(frozen=True)
class TrainedStudent:
    """A trained student and what `save` writes beside its weights (e.g. its feature matchers)."""

    model: nn.Module
    artifacts: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Task(Protocol):
    measures_cost: bool  # `cost` measures latency / params / size (screening and constraints need it)
    stops_early: bool    # `train` passes callbacks to training and `checkpoint_score` scores mid-training

    def build(self, architecture: Architecture) -> nn.Module: ...

    def cost(self, model: nn.Module) -> Mapping[str, Any]: ...

    def train(self, model: nn.Module, callbacks: Sequence[DistillationCallback] = ()) -> TrainedStudent: ...

    def evaluate(self, model: nn.Module) -> Mapping[str, Any]: ...

    def checkpoint_score(self, model: nn.Module) -> float: ...

    def save(self, student: TrainedStudent, directory: Path) -> None: ...

    def teacher_figures(self, recorded: Mapping[str, Any] | None) -> Mapping[str, Any] | None: ...


def measured_cost(model: nn.Module, spec: LatencySpec) -> dict[str, Any]:
    """Latency (the benchmark of evaluation/latency.py on dummy token ids below the model's
    `config.vocab_size`, the sequence capped at its `max_position_embeddings`), parameters and
    size of `model`: what a FunctionTask records when the user's functions give none."""
    config = getattr(model, "config", None)
    if getattr(config, "vocab_size", None) is None:
        raise ConfigError(
            f"the search measures latency itself when eval_func returns none, but {type(model).__name__} "
            "has no config.vocab_size to build token inputs from; give AutoDistillation(..., cost_func=f) "
            "with f(model) -> {'latency_p50_ms': ...}, or return 'latency_p50_ms' from eval_func")
    longest = getattr(config, "max_position_embeddings", None)
    if isinstance(longest, int) and spec.sequence_length > longest:
        spec = replace(spec, sequence_length=longest)
    return {**latency_figures(measure_latency(model, spec)), PARAMS.key: count_parameters(model),
            SIZE.key: model_size_mb(model)}


def latency_figures(latency: Latency) -> dict[str, float]:
    """A latency benchmark's figures as a trial records them (the raw median, the tail, the fastest
    call, how steady it was)."""
    return {LATENCY_P50.key: latency.p50_ms, LATENCY_P90.key: latency.p90_ms, "latency_min_ms": latency.min_ms,
            "latency_spread": latency.spread, "latency_attempts": latency.attempts}


class FunctionTask:
    """Seed 003's callables as a Task: `model_builder(architecture)`, `train_func(model[, callbacks])`,
    `eval_func(model)`, and optionally `save_func(model, directory)`, `cost_func(model)` and
    `checkpoint_func(model)` (early stopping's score). The teacher's figures, when the user has
    them, are `teacher_accuracy` and `teacher_latency_ms`.

    Without a `cost_func`, the figures of the `measured` metrics (AutoDistillation passes the
    study's latency, params and size objectives) that `eval_func` does not return are measured
    on the trained student (`measured_cost`, timed as `latency` says: default `LatencySpec()`)."""

    def __init__(self, model_builder: Callable[[Mapping[str, Any]], nn.Module], *,
                 train_func: Callable[..., nn.Module], eval_func: Callable[[nn.Module], Mapping[str, Any]],
                 save_func: Callable[[nn.Module, Path], None] | None = None,
                 cost_func: Callable[[nn.Module], Mapping[str, Any]] | None = None,
                 checkpoint_func: Callable[[nn.Module], float] | None = None,
                 teacher_accuracy: float | None = None, teacher_latency_ms: float | None = None,
                 measured: Sequence[Metric] = (), latency: LatencySpec | None = None) -> None:
        self.model_builder, self.train_func, self.eval_func = model_builder, train_func, eval_func
        self.save_func, self.cost_func, self.checkpoint_func = save_func or save_model, cost_func, checkpoint_func
        self.measured = tuple(measured) if cost_func is None else ()
        self.latency = latency or LatencySpec()
        self.measures_cost = cost_func is not None
        self._takes_callbacks = "callbacks" in inspect.signature(train_func).parameters
        self.stops_early = checkpoint_func is not None and self._takes_callbacks
        self._teacher = {key: value for key, value in ((ACCURACY.key, teacher_accuracy),
                                                       (LATENCY_P50.key, teacher_latency_ms))
                         if value is not None}

    def build(self, architecture: Architecture) -> nn.Module:
        return self.model_builder(architecture)

    def cost(self, model: nn.Module) -> Mapping[str, Any]:
        return {} if self.cost_func is None else self.cost_func(model)

    def train(self, model: nn.Module, callbacks: Sequence[DistillationCallback] = ()) -> TrainedStudent:
        trained = self.train_func(model, callbacks=list(callbacks)) if callbacks else self.train_func(model)
        return TrainedStudent(trained)

    def evaluate(self, model: nn.Module) -> Mapping[str, Any]:
        result = self.eval_func(model)
        if any(metric.value(result) is None for metric in self.measured):
            return {**measured_cost(model, self.latency), **result}
        return result

    def checkpoint_score(self, model: nn.Module) -> float:
        if self.checkpoint_func is None:
            raise NotImplementedError("no checkpoint_func was given")
        return self.checkpoint_func(model)

    def save(self, student: TrainedStudent, directory: Path) -> None:
        self.save_func(student.model, directory)

    def teacher_figures(self, recorded: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        return recorded if recorded is not None else (self._teacher or None)


class TaskWithFunctions:
    """`base` with some of its steps replaced by the user's callables (a config's
    `search.model_builder`, `search.train_func`, `search.eval_func` as `module:function`);
    everything else (cost, checkpoints, saving, the teacher's figures) stays the base task's."""

    def __init__(self, base: Task, *, model_builder: Callable[[Mapping[str, Any]], nn.Module] | None = None,
                 train_func: Callable[..., nn.Module] | None = None,
                 eval_func: Callable[[nn.Module], Mapping[str, Any]] | None = None) -> None:
        self.base, self.model_builder, self.train_func, self.eval_func = base, model_builder, train_func, eval_func
        self.measures_cost = base.measures_cost
        self.stops_early = base.stops_early if train_func is None else (
            base.stops_early and "callbacks" in inspect.signature(train_func).parameters)

    def build(self, architecture: Architecture) -> nn.Module:
        return (self.model_builder or self.base.build)(architecture)

    def cost(self, model: nn.Module) -> Mapping[str, Any]:
        return self.base.cost(model)

    def train(self, model: nn.Module, callbacks: Sequence[DistillationCallback] = ()) -> TrainedStudent:
        if self.train_func is None:
            return self.base.train(model, callbacks)
        return TrainedStudent(self.train_func(model, callbacks=list(callbacks)) if callbacks
                              else self.train_func(model))

    def evaluate(self, model: nn.Module) -> Mapping[str, Any]:
        return (self.eval_func or self.base.evaluate)(model)

    def checkpoint_score(self, model: nn.Module) -> float:
        return self.base.checkpoint_score(model)

    def save(self, student: TrainedStudent, directory: Path) -> None:
        self.base.save(student, directory)

    def teacher_figures(self, recorded: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        return self.base.teacher_figures(recorded)


__all__ = ["FunctionTask", "Task", "TaskWithFunctions", "TrainedStudent", "measured_cost", "save_model"]
