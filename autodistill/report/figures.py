"""A study as pictures: its Pareto front, and its objective values trial by trial.

The figures are `matplotlib.figure.Figure`s drawn by the Agg canvas: no display, no
pyplot state, nothing changed in the caller's matplotlib backend. Students are the
trained, completed trials (a repeat of an architecture is drawn once, as its first trial);
every student carries its trial number, so a point can be exported with `--trial N`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from autodistill.objectives import builtin_metric
from autodistill.report.table import teacher_metric
from autodistill.study.pareto import objective_names, pareto_front
from autodistill.study.trials import students as trained_students

FRONT_COLOUR = "tab:blue"
OTHER_COLOUR = "0.65"
TEACHER_COLOUR = "tab:red"


@dataclass(frozen=True)
class Student:
    number: int
    values: tuple[float, ...]
    on_front: bool


@dataclass(frozen=True)
class Objectives:
    names: list[str]
    directions: list[str]   # "maximize" | "minimize"

    @classmethod
    def of(cls, study: optuna.Study) -> Objectives:
        return cls(objective_names(study), [d.name.lower() for d in study.directions])

    def label(self, i: int) -> str:
        """'latency (ms, lower is better)': the unit where a built-in metric has one."""
        metric = builtin_metric(self.names[i])
        unit = f"{metric.unit}, " if metric is not None and metric.unit else ""
        better = "higher" if self.directions[i] == "maximize" else "lower"
        return f"{self.names[i]} ({unit}{better} is better)"


def students(study: optuna.Study) -> list[Student]:
    """The trained students in trial order, each marked on or off the Pareto front."""
    front = {t.number for t in pareto_front(study)}
    return [Student(t.number, tuple(float(v) for v in t.values), t.number in front)
            for t in trained_students(study)]


def pareto_axes(directions: Sequence[str]) -> tuple[int, int]:
    """(x, y) objective indices: a maximised objective (accuracy) up the y axis against a
    minimised one (latency) along x; otherwise the first objective on y, the second on x.
    A third objective is not drawn (the front marked is still the front over all of them)."""
    first, second = directions[0], directions[1]
    if first == "minimize" and second == "maximize":
        return 0, 1
    return 1, 0


def _no_students(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no trained student yet", ha="center", va="center", transform=ax.transAxes)


def _label_points(ax: Axes, points: Sequence[Student], x: int, y: int, colour: str) -> None:
    for s in points:
        ax.annotate(str(s.number), (s.values[x], s.values[y]), xytext=(4, 4),
                    textcoords="offset points", fontsize=8, color=colour)


def pareto_figure(study: optuna.Study, teacher: Mapping[str, Any] | None) -> Figure:
    """The students in the plane of two objectives (accuracy against latency), the front
    joined and highlighted, the teacher a star; every point labelled with its trial number."""
    objectives = Objectives.of(study)
    if len(objectives.names) < 2:
        raise ValueError("a Pareto front figure needs two objectives")
    x, y = pareto_axes(objectives.directions)
    fig = Figure(figsize=(7.5, 5.5), dpi=120, layout="constrained")
    ax = fig.subplots()
    points = students(study)
    front = sorted((s for s in points if s.on_front), key=lambda s: s.values[x])
    others = [s for s in points if not s.on_front]
    if others:
        ax.scatter([s.values[x] for s in others], [s.values[y] for s in others], s=25,
                   color=OTHER_COLOUR, label="other students", zorder=2)
        _label_points(ax, others, x, y, "0.35")
    if front:
        ax.plot([s.values[x] for s in front], [s.values[y] for s in front], "-o", markersize=7,
                color=FRONT_COLOUR, label="Pareto front", zorder=3)
        _label_points(ax, front, x, y, FRONT_COLOUR)
    if not points:
        _no_students(ax)
    if teacher:
        tx, ty = (teacher_metric(teacher, objectives.names[i]) for i in (x, y))
        if tx is not None and ty is not None:
            ax.scatter([tx], [ty], marker="*", s=220, color=TEACHER_COLOUR, label="teacher", zorder=4)
            ax.annotate("teacher", (tx, ty), xytext=(6, -12), textcoords="offset points",
                        fontsize=9, color=TEACHER_COLOUR)
    ax.set_xlabel(objectives.label(x))
    ax.set_ylabel(objectives.label(y))
    ax.set_title(f"Pareto front of study {study.study_name!r}: "
                 f"{len(front)} of {len(points)} trained students")
    ax.grid(True, alpha=0.3)
    if points or teacher:
        ax.legend(loc="best", fontsize=8)
    return fig


def history_figure(study: optuna.Study, teacher: Mapping[str, Any] | None) -> Figure:
    """Each objective against the trial number, one panel per objective, the front's
    students highlighted and labelled, the teacher's value a dashed line."""
    objectives = Objectives.of(study)
    n = len(objectives.names)
    fig = Figure(figsize=(7.5, 2.6 * n + 0.8), dpi=120, layout="constrained")
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    points = students(study)
    front = [s for s in points if s.on_front]
    others = [s for s in points if not s.on_front]
    for i, ax in enumerate(axes):
        ax.scatter([s.number for s in others], [s.values[i] for s in others], s=20,
                   color=OTHER_COLOUR, label="other students", zorder=2)
        ax.scatter([s.number for s in front], [s.values[i] for s in front], s=45,
                   color=FRONT_COLOUR, label="Pareto front", zorder=3)
        for s in front:
            ax.annotate(str(s.number), (s.number, s.values[i]), xytext=(4, 4),
                        textcoords="offset points", fontsize=8, color=FRONT_COLOUR)
        value = teacher_metric(teacher, objectives.names[i]) if teacher else None
        if value is not None:
            ax.axhline(value, linestyle="--", color=TEACHER_COLOUR, label="teacher", zorder=1)
        ax.set_ylabel(objectives.label(i))
        ax.grid(True, alpha=0.3)
    if points:
        axes[0].legend(loc="best", fontsize=8)
    else:
        _no_students(axes[0])
    axes[-1].set_xlabel("trial number")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_title(f"Search history of study {study.study_name!r}")
    return fig
