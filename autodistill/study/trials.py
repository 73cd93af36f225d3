"""Which trials of a study count toward `max_trials`, which trained, and what an architecture
already measured: questions asked of the trials' records (study/record.py)."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodistill.objectives import LATENCY_P50, PAIRED_TEACHER_LATENCY
from autodistill.study.record import StudyRecord, TrialRecord

ALONE = f"{LATENCY_P50.key}_alone"  # the teacher row's own median, where the paired one replaced it


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Trained-and-finished trials count, and so do failed ones; a repeat, a twin or an
    impossible architecture costs nothing, a trial lost with its worker or interrupted (no
    recorded reason) is tried again, and one failed for a reason a rerun cannot fix
    (`rerun_fails_again`: a config or programming error) leaves the budget for after the fix."""
    record = TrialRecord.from_trial(trial)
    if trial.state == TrialState.COMPLETE:
        return record.repeat_of is None
    if trial.state == TrialState.PRUNED:
        return not (record.ruled_out or record.twin_of is not None or record.repeat_of is not None)
    return (trial.state == TrialState.FAIL and record.failure_reason is not None
            and record.rerun_fails_again is None)  # failed with a reason a rerun can fix


def failed(trial: FrozenTrial) -> bool:
    """Failed with a recorded reason (not lost with its worker, nor interrupted)."""
    return trial.state == TrialState.FAIL and TrialRecord.from_trial(trial).failure_reason is not None


def ruled_out(trial: FrozenTrial) -> bool:
    """Ended before training: its architecture is impossible or breaks a budget (screened)."""
    return trial.state == TrialState.PRUNED and TrialRecord.from_trial(trial).ruled_out


def finished_count(study: optuna.Study) -> int:
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def holds_budget(trial: FrozenTrial) -> bool:
    """A running trial that will count when it finishes (a twin only waits for another's result)."""
    return trial.state == TrialState.RUNNING and TrialRecord.from_trial(trial).twin_of is None


def measured_cost(study: optuna.Study, key: str) -> dict[str, Any] | None:
    """The cost (latency, parameters, size) already measured for an architecture, if any."""
    for t in study.get_trials(deepcopy=False):
        record = TrialRecord.from_trial(t)
        if record.architecture_key == key and (cost := record.cost()) is not None:
            return cost
    return None


def early_stopped(trial: FrozenTrial) -> bool:
    """Trained, and stopped early (pruned with its last accuracy)."""
    return trial.state == TrialState.PRUNED and TrialRecord.from_trial(trial).pruned_reason is not None


def trained(trial: FrozenTrial) -> bool:
    """Trained its own student, to the end or stopped early (not a repeat of another trial)."""
    record = TrialRecord.from_trial(trial)
    return record.repeat_of is None and (trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.PRUNED and record.pruned_reason is not None))


def students(study: optuna.Study) -> list[FrozenTrial]:
    """The completed trials that trained their own student (a repeat stands for its first trial)."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if TrialRecord.from_trial(t).repeat_of is None]


def trained_by_architecture(study: optuna.Study) -> dict[str, FrozenTrial]:
    """The first trial that trained each architecture (what a repeat reuses: training it
    again would give the same student)."""
    seen: dict[str, FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        key = TrialRecord.from_trial(t).architecture_key
        if key is not None and key not in seen and trained(t):
            seen[key] = t
    return seen


def settled(trials: list[FrozenTrial]) -> set[str]:
    """Keys of the architectures trained (completed or stopped early) or ruled out before training."""
    keys = set()
    for t in trials:
        key = TrialRecord.from_trial(t).architecture_key
        if key is not None and (trained(t) or ruled_out(t)):
            keys.add(key)
    return keys


def teacher_reference(study: optuna.Study) -> dict[str, Any] | None:
    """The teacher's figures for the reference row (the study's `teacher`, measured once), with
    its latency replaced by the median of the teacher latencies timed call for call with the
    students (`teacher_latency_p50_ms`) where trials have them: the students' own conditions,
    so the row's latency agrees with the speed-ups next to it."""
    teacher = StudyRecord.of(study).teacher
    if teacher is None:
        return None
    paired = sorted(value for t in study.get_trials(deepcopy=False)
                    if (value := TrialRecord.from_trial(t).figures.get(PAIRED_TEACHER_LATENCY)) is not None)
    if not paired:
        return dict(teacher)
    middle = len(paired) // 2
    median = paired[middle] if len(paired) % 2 else (paired[middle - 1] + paired[middle]) / 2
    return {**teacher, LATENCY_P50.key: median, ALONE: teacher.get(LATENCY_P50.key)}



__all__ = ["ALONE", "counts_toward_budget", "early_stopped", "failed", "finished_count",
           "holds_budget", "measured_cost", "ruled_out", "settled", "students", "teacher_reference",
           "trained", "trained_by_architecture"]
