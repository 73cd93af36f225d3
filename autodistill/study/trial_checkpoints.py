"""Checkpoints of a search's trials: a trial whose worker died resumes where it stood.

    <output_dir>/checkpoints/<study>/<trial>/   the trial's checkpoints (distill/checkpoint.py:
                                                every checkpoint_every_steps and at each stage end)
    <output_dir>/tensorboard/<study>/<trial>/   its event files, where logging.tensorboard is on

A trial whose worker was killed (or interrupted) is failed and its architecture queued again as
a new trial that records `retry_of` (study/lost_trials.py). That retry resumes from the newest
checkpoint along its chain of retries (the lost trial's folder, else the one it retried, ...)
instead of training from scratch, and records `resumed_from_trial` and `resumed_at_step` (the
global step it resumed at). A trial's checkpoints are removed once it has trained (and those it
resumed from). `search.resume_trials: false` turns resumption off (every retry starts over).
"""

from __future__ import annotations

import inspect
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from autodistill.distill.callbacks import DistillationCallback, DistillationControl, DistillationState
from autodistill.distill.checkpoint import latest
from autodistill.paths import inside
from autodistill.study.record import TrialRecord, write


@dataclass(frozen=True)
class TrialFolders:
    """Where one trial writes its checkpoints and event files, and the checkpoint folder of the
    lost trial it resumes from (None: it starts from scratch)."""

    checkpoints: Path
    logs: Path
    resume_from: Path | None = None
    resumes_trial: int | None = None

    def remove(self) -> None:
        """The trial has trained: its checkpoints (and those it resumed from) are of no more use."""
        for folder in (self.checkpoints, self.resume_from):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


def takes_folders(task: Any) -> bool:
    """Whether the task's `train` takes the trial's `folders` (the built-in DistillationTask does)."""
    return "folders" in inspect.signature(task.train).parameters


def _folder(output_dir: Path, kind: str, study: optuna.Study, number: int) -> Path:
    return inside(output_dir, kind, study.study_name, f"{number:05d}", key="study name")


def trial_folders(study: optuna.Study, trial: optuna.Trial, output_dir: Path, *, resume: bool) -> TrialFolders:
    """`trial`'s folders; with `resume`, the newest checkpoint along its chain of retries."""
    own = TrialFolders(_folder(output_dir, "checkpoints", study, trial.number),
                       _folder(output_dir, "tensorboard", study, trial.number))
    if not resume:
        return own
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    lost, seen = TrialRecord.from_trial(trial).retry_of, set()
    while lost is not None and lost in by_number and lost not in seen:
        seen.add(lost)
        folder = _folder(output_dir, "checkpoints", study, lost)
        if latest(folder) is not None:
            return TrialFolders(own.checkpoints, own.logs, folder, lost)
        lost = TrialRecord.from_trial(by_number[lost]).retry_of
    return own


class ResumeRecorder(DistillationCallback):
    """Records on the trial the step its training resumed at (the Distiller restores the
    checkpoint's global step before `on_fit_begin`)."""

    def __init__(self, trial: optuna.Trial, folders: TrialFolders) -> None:
        self.trial, self.folders = trial, folders

    def on_fit_begin(self, state: DistillationState, control: DistillationControl) -> None:
        if self.folders.resumes_trial is not None and state.global_step:
            write(self.trial, TrialRecord(resumed_from_trial=self.folders.resumes_trial,
                                          resumed_at_step=state.global_step))
