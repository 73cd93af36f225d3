"""What a trial records in the study, and which trials count toward `max_trials`.

User attributes (JSON-serialisable, shown by optuna-dashboard):
`architecture`, `accuracy`, `test_accuracy`, `latency_p50_ms`, `latency_p90_ms`, `params`,
`size_mb`, `train_seconds`, `student_path`; a failed trial's `failure_reason` (and
`rerun_fails_again` when its cause is in the setup, which costs no budget); an
architecture no model can have `invalid_reason`; one over a latency/size budget
`screened_reason`; a repeated architecture `repeat_of`; an early-stopped one `pruned_reason`.

Several workers share a study (study/worker_lock.py, study/lost_trials.py): a trial records
its `worker` (host:pid); one proposed while another worker trains the same architecture
waits for that trial (`twin_of`) and reuses its result; a trial queued again because its
worker died or was interrupted records `retry_of`; an interrupted one `interrupted`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

ACCURACY_CURVE = "accuracy_curve"  # {step: validation accuracy} during regular distillation
ARCHITECTURE = "architecture"
ARCHITECTURE_KEY = "architecture_key"  # Architecture.key(): equal for equal architectures
FAILURE_REASON = "failure_reason"
INVALID_REASON = "invalid_reason"
PRUNED_REASON = "pruned_reason"
SCREENED_REASON = "screened_reason"
REPEAT_OF = "repeat_of"
STUDENT_PATH = "student_path"
WORKER = "worker"              # host:pid of the process that ran the trial
PROPOSED_BY = "proposed_by"    # set when the search, not the advisor, chose the architecture
TWIN_OF = "twin_of"            # the running trial of the same architecture this one waited for
RETRY_OF = "retry_of"          # the lost or interrupted trial whose architecture this one retries
RETRIES = "retries"            # how many times in a row this architecture was lost before
INTERRUPTED = "interrupted"    # Ctrl-C or SIGTERM during the trial
RERUN_FAILS_AGAIN = "rerun_fails_again"  # failed for a reason of the setup (study/search.py)
# what a trial records about itself, never copied into a repeat of it
OWN_KEYS = frozenset({ARCHITECTURE, ARCHITECTURE_KEY, WORKER, PROPOSED_BY, TWIN_OF, RETRY_OF, RETRIES, INTERRUPTED})
# the study's own user attributes
TEACHER = "teacher"                # the teacher's accuracy, latency, params, size (measured once)
TEACHER_MODEL = "teacher_model"    # where the teacher was loaded from (a folder or a hub name)
DATA = "data"                      # the data files, split sizes, label names and fingerprint
BINDING = "binding"                # fingerprints of the data and teacher the study is bound to (binding.py)
SEARCH_COMMAND = "search_command"  # the last `autodistill search` command run on the study
# what a trial's cost function measured before training; `speedup` (teacher / student, both
# timed in one interleaved benchmark) and `teacher_latency_p50_ms` where it paired them; the
# built-in one's `latency_ms`, the figure the study ranks by (study/task.py)
COST_KEYS = ("latency_p50_ms", "latency_p90_ms", "params", "size_mb", "speedup", "teacher_latency_p50_ms",
             "latency_ms", "latency_min_ms", "teacher_latency_min_ms", "latency_spread", "latency_attempts")


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Trained-and-finished trials count, and so do failed ones; a repeat, a twin or an
    impossible architecture costs nothing, a trial lost with its worker or interrupted (no
    recorded reason) is tried again, and one failed for a reason a rerun cannot fix
    (`RERUN_FAILS_AGAIN`: a config or programming error) leaves the budget for after the fix."""
    attrs = trial.user_attrs
    if trial.state == TrialState.COMPLETE:
        return REPEAT_OF not in attrs
    if trial.state == TrialState.PRUNED:
        return not {INVALID_REASON, SCREENED_REASON, TWIN_OF, REPEAT_OF} & attrs.keys()
    return failed(trial) and RERUN_FAILS_AGAIN not in attrs


def failed(trial: FrozenTrial) -> bool:
    """Failed with a recorded reason (not lost with its worker, nor interrupted)."""
    return trial.state == TrialState.FAIL and FAILURE_REASON in trial.user_attrs


def ruled_out(trial: FrozenTrial) -> bool:
    """Ended before training: its architecture is impossible or breaks a budget (screened)."""
    return trial.state == TrialState.PRUNED and not {INVALID_REASON, SCREENED_REASON}.isdisjoint(trial.user_attrs)


def finished_count(study: optuna.Study) -> int:
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def holds_budget(trial: FrozenTrial) -> bool:
    """A running trial that will count when it finishes (a twin only waits for another's result)."""
    return trial.state == TrialState.RUNNING and TWIN_OF not in trial.user_attrs


def measured_cost(study: optuna.Study, key: str) -> dict[str, Any] | None:
    """The cost (latency, parameters, size) already measured for an architecture, if any."""
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(ARCHITECTURE_KEY) == key and COST_KEYS[0] in t.user_attrs:
            return {k: t.user_attrs[k] for k in COST_KEYS if k in t.user_attrs}
    return None


def early_stopped(trial: FrozenTrial) -> bool:
    """Trained, and stopped early (pruned with its last accuracy)."""
    return trial.state == TrialState.PRUNED and PRUNED_REASON in trial.user_attrs


def trained(trial: FrozenTrial) -> bool:
    """Trained its own student, to the end or stopped early (not a repeat of another trial)."""
    return REPEAT_OF not in trial.user_attrs and (trial.state == TrialState.COMPLETE or early_stopped(trial))


def trained_by_architecture(study: optuna.Study) -> dict[str, FrozenTrial]:
    """The first trial that trained each architecture (what a repeat reuses: training it
    again would give the same student)."""
    seen: dict[str, FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        key = t.user_attrs.get(ARCHITECTURE_KEY)
        if key is not None and key not in seen and trained(t):
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


def teacher_reference(study: optuna.Study) -> dict[str, Any] | None:
    """The teacher's figures for the reference row (`TEACHER`, measured once per study), with
    its latency replaced by the median of the teacher latencies timed call for call with the
    students (`teacher_latency_p50_ms`) where trials have them: the students' own conditions,
    so the row's latency agrees with the speed-ups next to it."""
    teacher = study.user_attrs.get(TEACHER)
    if teacher is None:
        return None
    paired = sorted(t.user_attrs["teacher_latency_p50_ms"] for t in study.get_trials(deepcopy=False)
                    if t.user_attrs.get("teacher_latency_p50_ms") is not None)
    if not paired:
        return dict(teacher)
    middle = len(paired) // 2
    median = paired[middle] if len(paired) % 2 else (paired[middle - 1] + paired[middle]) / 2
    return {**teacher, "latency_p50_ms": median, "latency_p50_ms_alone": teacher.get("latency_p50_ms")}
