"""The Pareto front as a table: the teacher's row first, then each student on the front with its
objectives, the figures its task reports beside them, parameters, speed-up and retention.

The terminal (`autodistill search`, `show`) prints `format_table`; report.md holds the same
cells as Markdown. Every figure is written as its metric says (autodistill/objectives.py `Metric`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autodistill.errors import ConfigError
from autodistill.objectives import PARAMS, REPORTED, Metric, builtin_metric, metric_value
from autodistill.study.pareto import FrontRow
from autodistill.tables import aligned_table

PLAIN = Metric("", "", None)  # a metric of a user's eval function: written as a number


def teacher_metric(teacher: Mapping[str, Any], name: str) -> Any:
    """The teacher's value of a metric named as the objective is (through its `Metric`, as the
    students' values are), or by a key of the teacher's row."""
    value = metric_value(teacher, name)
    return teacher.get(name) if value is None else value


def _architecture(architecture: Mapping[str, Any]) -> str:
    if not architecture:
        return "-"
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in architecture.items())


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def reported_metrics(rows: Sequence[FrontRow], metric_names: Sequence[str],
                     teacher: Mapping[str, Any] | None) -> list[Metric]:
    """The reported figures (test accuracy, perplexity) that get a column: recorded by a row or
    the teacher, and not an objective already."""
    objectives = {m for name in metric_names if (m := builtin_metric(name)) is not None}
    return [m for m in REPORTED if m not in objectives
            and (any(r.figure(m) is not None for r in rows) or (teacher and m.value(teacher) is not None))]


def table_cells(rows: Sequence[FrontRow], *, metric_names: Sequence[str],
                teacher: Mapping[str, Any] | None = None) -> tuple[list[str], list[list[str]]]:
    """The front table as text cells: (header, lines), the teacher's line first when given.

    Columns: trial, architecture (`k=v` joined by spaces), one per objective (the trial's
    objective values), the reported figures a study records (test accuracy, perplexity),
    params, speed-up (`8.4x`), retention (`97.3%`, validation accuracy against the teacher's).
    """
    metric_names = list(metric_names)
    objectives = [builtin_metric(name) or PLAIN for name in metric_names]
    reported = reported_metrics(rows, metric_names, teacher)
    header = ["trial", "architecture", *metric_names, *(m.label or m.name for m in reported),
              "params", "speed-up", "retention"]
    body: list[list[str]] = []
    if teacher is not None:
        body.append(["teacher", _architecture(teacher.get("architecture") or {}),
                     *(m.format(teacher_metric(teacher, name)) for m, name in zip(objectives, metric_names)),
                     *(m.format(m.value(teacher)) for m in reported),
                     PARAMS.format(PARAMS.value(teacher)), _times(1.0), _percent(1.0)])
    for row in rows:
        if len(row.values) != len(metric_names):
            raise ConfigError(
                f"trial {row.number} has {len(row.values)} objective values but "
                f"metric_names has {len(metric_names)} ({metric_names}); give one name per objective"
            )
        body.append([str(row.number), _architecture(row.architecture),
                     *(m.format(v) for m, v in zip(objectives, row.values)),
                     *(m.format(row.figure(m)) for m in reported),
                     PARAMS.format(row.params), _times(row.speedup), _percent(row.retention)])
    return header, body


def format_table(rows: Sequence[FrontRow], *, metric_names: Sequence[str],
                 teacher: Mapping[str, Any] | None = None) -> str:
    """`table_cells` as a plain-text table, columns aligned."""
    header, body = table_cells(rows, metric_names=metric_names, teacher=teacher)
    return aligned_table(header, body, left={0, 1})
