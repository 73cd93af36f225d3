"""The Pareto front of a study: which students, a table of them, a JSON record.

Two objectives stay two: the result of a search is the set of trials no other trial
beats on every objective, not one weighted sum. `non_dominated` computes that set
from plain numbers (no Optuna), so tests can hold `study.best_trials` to it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodistill.atomic_file import write_atomically
from autodistill.errors import ConfigError
from autodistill.objectives import ACCURACY, LATENCY, metric_value

DIRECTIONS = ("maximize", "minimize")


def _direction(value: Any) -> str:
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
    dirs = [_direction(d) for d in directions]
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


def _is_repeat(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get("repeat_of") is not None


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials on the study's front, without repeats, best first on objective 0.

    Multi-objective: `study.best_trials` (which honours constraints); single-objective:
    `[study.best_trial]`. Trials whose user attr `repeat_of` is set reuse another
    trial's result and are dropped. Ties on objective 0 keep trial-number order.
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
    trials = [t for t in trials if t.state == TrialState.COMPLETE and not _is_repeat(t)]
    sign = -1.0 if _direction(study.directions[0]) == "maximize" else 1.0
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))


@dataclass(frozen=True)
class FrontRow:
    """One student on the front, with its speed-up and retention against the teacher."""

    number: int
    values: tuple[float, ...]
    architecture: dict = field(default_factory=dict)
    accuracy: float | None = None
    latency_ms: float | None = None
    params: int | None = None
    test_accuracy: float | None = None
    speedup: float | None = None
    retention: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "values": list(self.values),
            "architecture": dict(self.architecture),
            "accuracy": self.accuracy,
            "latency_ms": self.latency_ms,
            "params": self.params,
            "test_accuracy": self.test_accuracy,
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


def speedup(attrs: Mapping[str, Any], teacher: Mapping[str, Any]) -> float | None:
    """A trial's own `speedup` (teacher and student timed in one interleaved benchmark) where
    its cost function measured one, else the teacher's latency over the student's (`LATENCY`:
    the same figures the table shows, so for a paired trial both give one number)."""
    return attrs.get("speedup") or _ratio(LATENCY.value(teacher), LATENCY.value(attrs))


def retention(attrs: Mapping[str, Any], teacher: Mapping[str, Any]) -> float | None:
    """The student's validation accuracy over the teacher's."""
    return _ratio(ACCURACY.value(attrs), ACCURACY.value(teacher))


def front_rows(study: optuna.Study, *, teacher: Mapping[str, Any] | None = None
               ) -> list[FrontRow]:
    """`pareto_front(study)` as rows, read from the trials' user attrs.

    Speed-up is the trial's own `speedup` (teacher and student timed in one interleaved
    benchmark) where its cost function measured one, else the study's teacher latency /
    the student's latency; retention is student accuracy / teacher accuracy; both figures
    read through their `Metric` (objectives.py); None where a number is missing.
    """
    teacher = teacher or {}
    rows = []
    for trial in pareto_front(study):
        attrs = trial.user_attrs
        acc, lat = ACCURACY.value(attrs), LATENCY.value(attrs)
        rows.append(FrontRow(
            number=trial.number,
            values=tuple(float(v) for v in trial.values),
            architecture=dict(attrs.get("architecture") or {}),
            accuracy=acc,
            latency_ms=lat,
            params=attrs.get("params"),
            test_accuracy=attrs.get("test_accuracy"),
            speedup=speedup(attrs, teacher),
            retention=retention(attrs, teacher),
        ))
    return rows


def _fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fmt_arch(architecture: Mapping[str, Any]) -> str:
    if not architecture:
        return "-"
    return " ".join(f"{k}={_fmt_value(v)}" for k, v in architecture.items())


def _fmt_params(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def _fmt_speedup(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def _fmt_retention(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def teacher_metric(teacher: Mapping[str, Any], name: str) -> Any:
    """The teacher's value of a metric named as the objective is (through its `Metric`, as the
    students' values are), or by a key of the teacher's row."""
    value = metric_value(teacher, name)
    return teacher.get(name) if value is None else value


def table_cells(rows: Sequence[FrontRow], *, metric_names: Sequence[str],
                teacher: Mapping[str, Any] | None = None) -> tuple[list[str], list[list[str]]]:
    """The front table as text cells: (header, lines), the teacher's line first when given.

    Columns: trial, architecture (`k=v` joined by spaces), one per metric (the
    trial's objective values), test accuracy (when recorded), params, speed-up (`8.4x`),
    retention (`97.3%`, validation accuracy against the teacher's).
    """
    metric_names = list(metric_names)
    # test accuracy is reported, never used to choose: a column of its own when known
    with_test = any(r.test_accuracy is not None for r in rows) or bool(
        teacher and teacher.get("test_accuracy") is not None)
    test_col = ["test acc"] if with_test else []
    header = ["trial", "architecture", *metric_names, *test_col, "params", "speed-up", "retention"]
    body: list[list[str]] = []
    if teacher is not None:
        body.append(["teacher", _fmt_arch(teacher.get("architecture") or {}),
                     *(_fmt_value(teacher_metric(teacher, m)) for m in metric_names),
                     *([_fmt_value(teacher.get("test_accuracy"))] if with_test else []),
                     _fmt_params(teacher.get("params")), _fmt_speedup(1.0),
                     _fmt_retention(1.0)])
    for row in rows:
        if len(row.values) != len(metric_names):
            raise ConfigError(
                f"trial {row.number} has {len(row.values)} objective values but "
                f"metric_names has {len(metric_names)} ({metric_names}); give one name per objective"
            )
        body.append([str(row.number), _fmt_arch(row.architecture),
                     *(_fmt_value(v) for v in row.values),
                     *([_fmt_value(row.test_accuracy)] if with_test else []), _fmt_params(row.params),
                     _fmt_speedup(row.speedup), _fmt_retention(row.retention)])
    return header, body


def format_table(rows: Sequence[FrontRow], *, metric_names: Sequence[str],
                 teacher: Mapping[str, Any] | None = None) -> str:
    """`table_cells` as a plain-text table, columns aligned."""
    header, body = table_cells(rows, metric_names=metric_names, teacher=teacher)
    widths = [max(len(line[c]) for line in [header, *body]) for c in range(len(header))]
    left = {0, 1}  # text columns left-aligned, numbers right-aligned

    def render(line: list[str]) -> str:
        cells = [cell.ljust(w) if c in left else cell.rjust(w)
                 for c, (cell, w) in enumerate(zip(line, widths))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(line) for line in body)])


def _jsonable(value: Any) -> Any:
    """Non-finite floats become None: strict JSON has no NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_pareto_json(path: str | Path, rows: Sequence[FrontRow], *,
                      metric_names: Sequence[str], directions: Sequence[Any],
                      teacher: Mapping[str, Any] | None = None) -> Path:
    """Write {"metrics", "directions", "teacher", "front"} atomically; return the path."""
    path = Path(path)
    directions = [_direction(d) for d in directions]
    if len(directions) != len(metric_names):
        raise ConfigError(
            f"{len(metric_names)} metric names but {len(directions)} directions; "
            f"give one direction per metric"
        )
    document = _jsonable({
        "metrics": list(metric_names),
        "directions": directions,
        "teacher": dict(teacher) if teacher is not None else None,
        "front": [row.to_dict() for row in rows],
    })
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
