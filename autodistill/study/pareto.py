"""The Pareto front of a study: which students, and their figures against the teacher.

Two objectives stay two: the result of a search is the set of trials no other trial
beats on every objective, not one weighted sum. `non_dominated` computes that set
from plain numbers (no Optuna), so tests can hold `study.best_trials` to it. The table,
pareto.json and the report write these rows (autodistill/report/).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodistill.errors import ConfigError
from autodistill.objectives import ACCURACY, LATENCY, PARAMS, REPORTED, SPEEDUP, TEST_ACCURACY, Metric
from autodistill.study.record import TrialRecord

DIRECTIONS = ("maximize", "minimize")


def direction_name(value: Any) -> str:
    """'maximize'/'minimize' from a string or an optuna StudyDirection."""
    name = value.name if hasattr(value, "name") else value
    text = str(name).strip().lower()
    if text not in DIRECTIONS:
        raise ConfigError(f"a direction must be 'maximize' or 'minimize', but got {value!r}")
    return text


def non_dominated(points: Sequence[Sequence[float]], directions: Sequence[Any]) -> list[int]:
    """Indices (ascending) of the points no other point dominates.

    Point a dominates b when a is at least as good on every objective and strictly
    better on one. Equal points do not dominate each other, so duplicates of a
    non-dominated point are all kept.
    """
    dirs = [direction_name(d) for d in directions]
    if not dirs:
        raise ConfigError("non_dominated needs at least one direction")
    signs = [-1.0 if d == "maximize" else 1.0 for d in dirs]  # turn everything into minimise
    costs: list[tuple[float, ...]] = []
    for i, point in enumerate(points):
        if len(point) != len(dirs):
            raise ConfigError(
                f"point {i} has {len(point)} values but there are {len(dirs)} directions; "
                f"give one value per objective"
            )
        costs.append(tuple(s * float(v) for s, v in zip(signs, point)))

    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    return [i for i, c in enumerate(costs)
            if not any(dominates(other, c) for j, other in enumerate(costs) if j != i)]


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objectives as named (`set_metric_names`), else `objective_<i>`."""
    return list(study.metric_names or [f"objective_{i}" for i in range(len(study.directions))])


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials on the study's front, without repeats, best first on objective 0.

    Multi-objective: `study.best_trials` (which honours constraints); single-objective:
    `[study.best_trial]`. Trials that record `repeat_of` reuse another trial's result
    and are dropped. Ties on objective 0 keep trial-number order.
    """
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    if len(study.directions) > 1:
        trials = list(study.best_trials)
    else:
        try:
            trials = [study.best_trial]
        except ValueError:  # e.g. no feasible trial
            return []
    trials = [t for t in trials if t.state == TrialState.COMPLETE and TrialRecord.from_trial(t).repeat_of is None]
    sign = -1.0 if direction_name(study.directions[0]) == "maximize" else 1.0
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))


@dataclass(frozen=True)
class FrontRow:
    """One student on the front, with its speed-up and retention against the teacher, and the
    figures its task reports beside the objectives (`reported`: objectives.REPORTED, by key)."""

    number: int
    values: tuple[float, ...]
    architecture: dict = field(default_factory=dict)
    accuracy: float | None = None
    latency_ms: float | None = None
    params: int | None = None
    speedup: float | None = None
    retention: float | None = None
    reported: Mapping[str, Any] = field(default_factory=dict)

    def figure(self, metric: Metric) -> Any:
        """The row's figure of a reported metric (test accuracy, perplexity, ...), or None."""
        return self.reported.get(metric.key)

    @property
    def test_accuracy(self) -> float | None:
        return self.figure(TEST_ACCURACY)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "values": list(self.values),
            "architecture": dict(self.architecture),
            "accuracy": self.accuracy,
            "latency_ms": self.latency_ms,
            "params": self.params,
            **{m.key: self.figure(m) for m in REPORTED},
            "speedup": self.speedup,
            "retention": self.retention,
        }


def _ratio(numerator: Any, denominator: Any) -> float | None:
    if numerator is None or denominator is None:
        return None
    num, den = float(numerator), float(denominator)
    if not (math.isfinite(num) and math.isfinite(den)) or den <= 0:
        return None
    return num / den


def speedup(figures: Mapping[str, Any], teacher: Mapping[str, Any]) -> float | None:
    """A trial's own `speedup` (teacher and student timed in one interleaved benchmark) where
    its cost function measured one, else the teacher's latency over the student's (`LATENCY`:
    the same figures the table shows, so for a paired trial both give one number)."""
    return figures.get(SPEEDUP) or _ratio(LATENCY.value(teacher), LATENCY.value(figures))


def retention(figures: Mapping[str, Any], teacher: Mapping[str, Any]) -> float | None:
    """The student's validation accuracy over the teacher's."""
    return _ratio(ACCURACY.value(figures), ACCURACY.value(teacher))


def front_rows(study: optuna.Study, *, teacher: Mapping[str, Any] | None = None
               ) -> list[FrontRow]:
    """`pareto_front(study)` as rows, read from the trials' records.

    Speed-up is the trial's own `speedup` (teacher and student timed in one interleaved
    benchmark) where its cost function measured one, else the study's teacher latency /
    the student's latency; retention is student accuracy / teacher accuracy; both figures
    read through their `Metric` (objectives.py); None where a number is missing.
    """
    teacher = teacher or {}
    rows = []
    for trial in pareto_front(study):
        record = TrialRecord.from_trial(trial)
        figures = record.figures
        rows.append(FrontRow(
            number=trial.number,
            values=tuple(float(v) for v in trial.values),
            architecture=dict(record.architecture or {}),
            accuracy=record.value(ACCURACY),
            latency_ms=record.value(LATENCY),
            params=record.value(PARAMS),
            speedup=speedup(figures, teacher),
            retention=retention(figures, teacher),
            reported={m.key: record.value(m) for m in REPORTED},
        ))
    return rows
