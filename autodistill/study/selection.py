"""Choosing one student by a rule: a goal, and conditions every candidate must meet.

    rule = SelectionRule("fastest", min_retention=0.97)      # fastest keeping >= 97% accuracy
    rule = SelectionRule("most-accurate", max_latency_ms=5)  # most accurate under 5 ms
    trial = select_trial(study, rule)

Candidates are the trained, completed trials (a repeat of an architecture is its first
trial). Retention is validation accuracy over the teacher's, as in the Pareto table; ties
are broken by the other figures, then by the lower trial number. Under two objectives
(accuracy, latency) the chosen student is always on the Pareto front.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from autodistill.errors import ConfigError
from autodistill.objectives import ACCURACY, LATENCY, PARAMS, Metric
from autodistill.study.pareto import retention
from autodistill.study.record import TrialRecord
from autodistill.study.trials import students, teacher_reference


def _or(attrs: Mapping[str, Any], metric: Metric, missing: float) -> float:
    value = metric.value(attrs)
    return missing if value is None else float(value)


# goal -> (the figure it ranks by, its sort key: the lowest key wins, ties broken by the
# rest; a figure a trial lacks counts as the worst)
GOALS: dict[str, tuple[Metric, Callable[[Mapping[str, Any]], tuple[float, ...]]]] = {
    "fastest": (LATENCY, lambda a: (_or(a, LATENCY, math.inf), -_or(a, ACCURACY, 0.0), _or(a, PARAMS, math.inf))),
    "most-accurate": (ACCURACY, lambda a: (-_or(a, ACCURACY, 0.0), _or(a, LATENCY, math.inf),
                                           _or(a, PARAMS, math.inf))),
    "smallest": (PARAMS, lambda a: (_or(a, PARAMS, math.inf), -_or(a, ACCURACY, 0.0), _or(a, LATENCY, math.inf))),
}


@dataclass(frozen=True)
class SelectionRule:
    goal: str
    min_retention: float | None = None   # a fraction of the teacher's validation accuracy
    min_accuracy: float | None = None
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        if self.goal not in GOALS:
            raise ConfigError(f"--best {self.goal!r} is not a rule; choose one of: {', '.join(GOALS)}")
        if self.min_retention is not None and not 0 < self.min_retention <= 2:
            raise ConfigError(
                f"--min-retention {self.min_retention:g} is a fraction of the teacher's accuracy; "
                f"write e.g. 0.97 for 97%"
            )
        if self.min_accuracy is not None and not 0 <= self.min_accuracy <= 1:
            raise ConfigError(f"--min-accuracy {self.min_accuracy:g} is an accuracy; give it in [0, 1]")
        if self.max_latency_ms is not None and self.max_latency_ms <= 0:
            raise ConfigError(f"--max-latency-ms {self.max_latency_ms:g} must be positive (milliseconds)")

    def conditions(self) -> list[str]:
        out = []
        if self.min_retention is not None:
            out.append(f"retention >= {100 * self.min_retention:g}%")
        if self.min_accuracy is not None:
            out.append(f"accuracy >= {self.min_accuracy:g}")
        if self.max_latency_ms is not None:
            out.append(f"latency <= {self.max_latency_ms:g} ms")
        return out

    def describe(self) -> str:
        """'fastest with retention >= 97%', 'most-accurate with latency <= 5 ms', 'smallest'."""
        conditions = self.conditions()
        return self.goal + (" with " + " and ".join(conditions) if conditions else "")


def _figures(trial: FrozenTrial) -> Mapping[str, Any]:
    return TrialRecord.from_trial(trial).figures


def _closest(candidates: list[FrozenTrial], rule: SelectionRule, teacher: Mapping[str, Any]) -> str:
    """What the study offers on each condition: why nothing met the rule."""
    def best(key: Callable[[FrozenTrial], float | None], highest: bool) -> tuple[float, int] | None:
        known = [(v, t.number) for t in candidates if (v := key(t)) is not None]
        if not known:
            return None
        # the best value; of equal values, the first trial
        return max(known, key=lambda k: (k[0], -k[1])) if highest else min(known)

    notes = []
    if rule.min_retention is not None and (found := best(lambda t: retention(_figures(t), teacher), True)):
        notes.append(f"the highest retention is {100 * found[0]:.1f}% (trial {found[1]})")
    if rule.min_accuracy is not None and (found := best(lambda t: ACCURACY.value(_figures(t)), True)):
        notes.append(f"the highest accuracy is {found[0]:.4g} (trial {found[1]})")
    if rule.max_latency_ms is not None and (found := best(lambda t: LATENCY.value(_figures(t)), False)):
        notes.append(f"the lowest latency is {found[0]:.4g} ms (trial {found[1]})")
    return "; ".join(notes)


def _meets(attrs: Mapping[str, Any], rule: SelectionRule, teacher: Mapping[str, Any]) -> bool:
    if rule.min_retention is not None:
        kept = retention(attrs, teacher)
        if kept is None or kept < rule.min_retention:
            return False
    accuracy, latency = ACCURACY.value(attrs), LATENCY.value(attrs)
    if rule.min_accuracy is not None and (accuracy is None or accuracy < rule.min_accuracy):
        return False
    return rule.max_latency_ms is None or (latency is not None and latency <= rule.max_latency_ms)


def select_trial(study: optuna.Study, rule: SelectionRule) -> FrozenTrial:
    """The trial the rule picks; a ConfigError saying what the study offers when none qualifies."""
    teacher = teacher_reference(study) or {}
    if rule.min_retention is not None and ACCURACY.value(teacher) is None:
        raise ConfigError(
            f"--min-retention needs the teacher's accuracy, which study {study.study_name!r} does "
            "not record; use --min-accuracy instead"
        )
    candidates = students(study)
    if not candidates:
        raise ConfigError(f"study {study.study_name!r} has no completed trial yet; run the search first")
    metric, sort_key = GOALS[rule.goal]
    ranked = [t for t in candidates if metric.value(_figures(t)) is not None]
    if not ranked:
        raise ConfigError(
            f"--best {rule.goal} ranks by the trials' {metric.key!r}, which no completed trial of study "
            f"{study.study_name!r} records; choose another rule or --trial N"
        )
    chosen = [t for t in ranked if _meets(_figures(t), rule, teacher)]
    if not chosen:
        raise ConfigError(
            f"no completed trial of study {study.study_name!r} meets {' and '.join(rule.conditions())}: "
            f"{_closest(ranked, rule, teacher)}. Relax the condition, or see `autodistill show`"
        )
    return min(chosen, key=lambda t: (*sort_key(_figures(t)), t.number))
