"""One trial of the search, from its architecture to what the study is told (seed 003's
`train_evaluate`): a twin waits for the other worker's trial of its architecture, a repeat
reuses the first result; otherwise the student is built, its cost measured (once per
architecture) and screened against the budgets, trained (with early stopping and the trial's
checkpoint folders), evaluated and saved. How each way of ending is recorded: study/outcomes.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState
from torch import nn

from autodistill.atomic_file import write_folder_atomically
from autodistill.distill.callbacks import DistillationCallback
from autodistill.errors import DiskSpaceError, InvalidArchitecture
from autodistill.objectives import ACCURACY, LATENCY, objective_values, trial_result
from autodistill.paths import inside
from autodistill.space import Architecture
from autodistill.study import lost_trials, trials
from autodistill.study.early_stopping import EarlyStopping, StopRule, TrialEarlyStopped
from autodistill.study.outcomes import Outcome, end_failed, end_pruned
from autodistill.study.protocol import TrainedStudent
from autodistill.study.record import TrialRecord, write
from autodistill.study.screening import broken_budgets
from autodistill.study.trial_checkpoints import ResumeRecorder, takes_folders, trial_folders

if TYPE_CHECKING:
    from autodistill.study.search import AutoDistillation

log = logging.getLogger(__name__)


def train_evaluate(agent: AutoDistillation, trial: optuna.Trial, architecture: Architecture) -> Outcome:
    """Build, train, evaluate and save one student, and tell the study how it went."""
    with agent.interruptible(trial):
        reused = None if agent.config.allow_repeats else _reuse(agent, trial, architecture)
        return reused if reused is not None else _train_evaluate(agent, trial, architecture)


def _reuse(agent: AutoDistillation, trial: optuna.Trial, architecture: Architecture) -> Outcome | None:
    """A twin's or a repeat's end (the architecture is another trial's), or None: train it."""
    twin = TrialRecord.from_trial(trial).twin_of
    if twin is not None:
        ended = agent.claims.wait_for(twin)
        if ended != TrialState.COMPLETE:
            return end_pruned(agent.study, trial, TrialRecord(), Outcome.REPEAT,
                              f"waited for trial {twin} (the same architecture, another worker), "
                              f"which ended {ended.name}: not trained twice")
    earlier = trials.trained_by_architecture(agent.study).get(architecture.key())
    if earlier is None:
        return None
    reused = TrialRecord.from_trial(earlier).reused(repeat_of=earlier.number)
    if earlier.state == TrialState.PRUNED:
        return end_pruned(agent.study, trial, reused, Outcome.REPEAT,
                          f"repeats trial {earlier.number} ({dict(architecture)}), which was "
                          "stopped early: not trained again")
    write(trial, reused)
    agent.study.tell(trial, earlier.values)
    log.info("trial %d repeats trial %d (%s): reused its result", trial.number, earlier.number, dict(architecture))
    return Outcome.REPEAT


def _train_evaluate(agent: AutoDistillation, trial: optuna.Trial, architecture: Architecture) -> Outcome:
    started = time.perf_counter()
    try:
        model = agent.task.build(architecture)
    except InvalidArchitecture as exc:
        return end_pruned(agent.study, trial, TrialRecord(invalid_reason=str(exc)), Outcome.INVALID,
                          f"invalid architecture {dict(architecture)}: {exc}")
    except Exception as exc:
        return end_failed(agent.study, trial, exc)
    try:
        cost = _cost(agent, architecture, model)
        broken = broken_budgets(agent.config.constraints, cost, agent.teacher_latency_ms)
        if broken:
            return end_pruned(agent.study, trial, TrialRecord(figures=cost, screened_reason=broken),
                              Outcome.SCREENED, f"screened out before training: {broken}")
        student = _train(agent, trial, model, cost)
        train_seconds = time.perf_counter() - started
        result = trial_result(cost, agent.task.evaluate(student.model))
        values = objective_values(agent.objectives, result)
        saved = str(_save(agent, trial.number, student)) if agent.save_students else None
        write(trial, TrialRecord(figures=result, train_seconds=train_seconds, student_path=saved))
    except TrialEarlyStopped as stop:
        return end_pruned(agent.study, trial, TrialRecord(figures={**cost, ACCURACY.key: stop.accuracy},
                                                         pruned_reason=stop.reason,
                                                         train_seconds=time.perf_counter() - started),
                          Outcome.PRUNED, f"stopped early: {stop.reason}")
    except DiskSpaceError as exc:  # every trial would fail alike: the search stops with its one line;
        # the trial costs no budget (as an interrupted one) and its architecture is tried again
        write(trial, TrialRecord(interrupted=True))
        ended = agent.study.tell(trial, state=TrialState.FAIL)
        log.info("trial %d stopped, its architecture queued again: %s", trial.number, exc)
        lost_trials.retry_architecture(agent.study, ended, max_retries=agent.config.max_retries)
        raise
    except Exception as exc:
        return end_failed(agent.study, trial, exc)
    agent.study.tell(trial, values)
    log.info("trial %d %s -> %s", trial.number, dict(architecture),
             dict(zip((o.name for o in agent.objectives), values)))
    return Outcome.TRAINED


def _cost(agent: AutoDistillation, architecture: Architecture, model: nn.Module) -> dict[str, Any]:
    """Latency, parameters and size of the untrained student; measured once per architecture."""
    if not agent.task.measures_cost:
        return {}
    known = trials.measured_cost(agent.study, architecture.key())
    return known if known is not None else dict(agent.task.cost(model))


def _train(agent: AutoDistillation, trial: optuna.Trial, model: nn.Module,
           cost: Mapping[str, Any]) -> TrainedStudent:
    """The task's training, with early stopping's checkpoints when configured; a task whose
    `train` takes `folders` (the built-in one) checkpoints into the trial's folders, and a
    retry of a lost trial resumes from its checkpoint (study/trial_checkpoints.py)."""
    callbacks: list[DistillationCallback] = []
    if agent.early_stopping is not None:
        curve: dict[str, float] = {}

        def record_checkpoint(step: int, accuracy: float) -> None:
            curve[str(step)] = accuracy
            write(trial, TrialRecord(accuracy_curve=dict(curve)))

        rule = StopRule(agent.early_stopping, agent.study, latency_ms=LATENCY.value(cost),
                        teacher_accuracy=agent.teacher_accuracy)
        callbacks.append(EarlyStopping(evaluate=lambda: agent.task.checkpoint_score(model),
                                       every=agent.early_stopping.eval_every_steps, rule=rule,
                                       on_checkpoint=record_checkpoint))
    if not takes_folders(agent.task):
        return agent.task.train(model, callbacks=callbacks) if callbacks else agent.task.train(model)
    folders = trial_folders(agent.study, trial, agent.output_dir, resume=agent.config.resume_trials)
    try:
        student = agent.task.train(model, callbacks=[*callbacks, ResumeRecorder(trial, folders)],
                                  folders=folders)  # type: ignore[call-arg]  # takes_folders
    except TrialEarlyStopped:
        folders.remove()
        raise
    folders.remove()
    return student


def _save(agent: AutoDistillation, number: int, student: TrainedStudent) -> Path:
    """Save into a temporary folder of this save's own, then rename: a kill never leaves a
    half-written student, and nothing this trial did not write is deleted or overwritten."""
    # per study: several studies may share an output directory (and its teacher and cache)
    final = inside(agent.output_dir, "trials", agent.study.study_name, f"{number:05d}", key="study name")
    if final.exists():  # not this trial's (trial numbers are unique): another study's, or the user's
        raise FileExistsError(f"{final} exists and was not written by this trial; it is left as it is")
    return write_folder_atomically(final, lambda tmp: agent.task.save(student, tmp))
