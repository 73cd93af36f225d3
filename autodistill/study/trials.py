"""What a trial records in the study, and which trials count toward `max_trials`.

User attributes (JSON-serialisable, shown by optuna-dashboard):
`architecture`, `accuracy`, `test_accuracy`, `latency_p50_ms`, `latency_p90_ms`, `params`,
`size_mb`, `train_seconds`, `student_path`; a failed trial's `failure_reason`; an
architecture no model can have `invalid_reason`; one over a latency/size budget
`screened_reason`; a repeated architecture `repeat_of`; an early-stopped one `pruned_reason`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

ACCURACY_CURVE = "accuracy_curve"  # {step: validation accuracy} during regular distillation
ARCHITECTURE = "architecture"
FAILURE_REASON = "failure_reason"
INVALID_REASON = "invalid_reason"
PRUNED_REASON = "pruned_reason"
SCREENED_REASON = "screened_reason"
REPEAT_OF = "repeat_of"
STUDENT_PATH = "student_path"
COST_KEYS = ("latency_p50_ms", "latency_p90_ms", "params", "size_mb")


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Trained-and-finished trials count; a repeat or an impossible architecture costs nothing,
    and a trial failed by a crash elsewhere (no recorded reason) is tried again."""
    attrs = trial.user_attrs
    if trial.state == TrialState.COMPLETE:
        return REPEAT_OF not in attrs
    if trial.state == TrialState.PRUNED:
        return INVALID_REASON not in attrs and SCREENED_REASON not in attrs
    if trial.state == TrialState.FAIL:
        return FAILURE_REASON in attrs
    return False


def finished_count(study: optuna.Study) -> int:
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def measured_cost(study: optuna.Study, key: str) -> dict[str, Any] | None:
    """The cost (latency, parameters, size) already measured for an architecture, if any."""
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(ARCHITECTURE + "_key") == key and COST_KEYS[0] in t.user_attrs:
            return {k: t.user_attrs[k] for k in COST_KEYS if k in t.user_attrs}
    return None


def completed_by_architecture(study: optuna.Study) -> dict[str, FrozenTrial]:
    """The first completed, trained trial of each architecture (to reuse on a repeat)."""
    seen: dict[str, FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = t.user_attrs.get(ARCHITECTURE + "_key")
        if key is not None and REPEAT_OF not in t.user_attrs and key not in seen:
            seen[key] = t
    return seen


def json_safe(value: Any) -> Any:
    """A user-attribute value Optuna can store (JSON): no NaN, no tensors, no tuples."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def record(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, json_safe(value))
