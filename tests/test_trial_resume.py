"""A search trial whose worker was killed with -9 resumes from its last checkpoint when its
architecture is retried (study/trial_checkpoints.py), and ends with the weights of an
uninterrupted trial; a retry of a retry resumes from the newest checkpoint along the chain;
`search.resume_trials: false` trains the retry from scratch."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from safetensors.torch import load_file
from search_processes import SearchProcess, read_trials

from autodistill.config.schema import SearchSection
from autodistill.distill.callbacks import DistillationControl, DistillationState
from autodistill.distill.checkpoint import LATEST, META
from autodistill.study.record import TrialRecord, enqueue
from autodistill.study.trial_checkpoints import ResumeRecorder, TrialFolders, trial_folders

ONE_ARCHITECTURE = {
    "      hidden_size: [8, 16, 24]\n      num_hidden_layers: {low: 1, high: 2}\n"
    "      num_attention_heads: [2, 3, 4]\n": "      hidden_size: [16]\n      num_hidden_layers: [2]\n"
                                              "      num_attention_heads: [2]\n",
    "    max_trials: 4\n": "    max_trials: 1\n",
    "  progress: false\n": "  progress: false\n  checkpoint_every_steps: 2\n",
    "    train_steps: 4\n": "    train_steps: 40\n",  # long enough to be caught between checkpoints
}


def _config(workspace: Path, out: Path, **more: str) -> Path:
    from test_search import write_config

    return write_config(workspace, out, **ONE_ARCHITECTURE, **more)


def _kill_after_a_checkpoint(run: SearchProcess, folder: Path, *, timeout: float = 300) -> int:
    """SIGSTOP the search once its trial has written a checkpoint past the first, kill it with -9;
    the global step of the checkpoint it left."""
    pointer = folder / LATEST
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.popen.poll() is None, f"the search ended before it could be killed: {run.stderr()[-2000:]}"
        if pointer.is_file() and pointer.read_text().strip() not in ("", "step-000000002"):
            os.kill(run.popen.pid, signal.SIGSTOP)
            name = pointer.read_text().strip() if pointer.is_file() else ""
            if name:
                run.kill()
                return int(name.removeprefix("step-"))
            os.kill(run.popen.pid, signal.SIGCONT)  # the trial had just ended: too late
        time.sleep(0.005)
    raise AssertionError(f"no checkpoint appeared in {folder} within {timeout} s")


def _weights(trial_attrs: dict) -> dict:
    return load_file(str(Path(trial_attrs["student_path"]) / "model.safetensors"))


@pytest.fixture(scope="module")
def reference(workspace, tmp_path_factory):
    """The same trial, uninterrupted (in a process of its own, as the killed one)."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    run = SearchProcess.start(_config(workspace, out), logs=out.parent / "logs")
    assert run.wait(timeout=600) == 0, run.stderr()
    trained = [t for t in read_trials(out / "study.db") if t.trained]
    assert len(trained) == 1
    return trained[0]


def test_a_killed_trial_resumes_at_its_checkpoint_and_ends_as_an_uninterrupted_one(workspace, tmp_path,
                                                                                   reference):
    out = tmp_path / "run"
    config = _config(workspace, out)
    run = SearchProcess.start(config, logs=tmp_path / "killed")
    step = _kill_after_a_checkpoint(run, out / "checkpoints" / "tiny" / "00000")
    retried = SearchProcess.start(config, logs=tmp_path / "retried")  # a process as the others (threads)
    assert retried.wait(timeout=600) == 0, retried.stderr()
    trials = {t.number: t for t in read_trials(out / "study.db")}
    assert trials[0].state == "FAIL" and "student_path" not in trials[0].attrs
    retry = trials[1]
    assert retry.trained and retry.attrs["retry_of"] == 0
    assert retry.attrs["resumed_from_trial"] == 0 and retry.attrs["resumed_at_step"] == step
    ours, theirs = _weights(retry.attrs), _weights(reference.attrs)
    assert ours.keys() == theirs.keys()
    assert all((ours[k] == theirs[k]).all() for k in ours)
    assert not (out / "checkpoints" / "tiny" / "00000").exists()  # used up: removed with the retry's own
    assert not (out / "checkpoints" / "tiny" / "00001").exists()


def _lost_and_retried(tmp_path: Path, *, checkpoints: tuple[int, ...]):
    """A study whose trial 0 was lost, retried as trial 1, lost again and retried as trial 2;
    the trials in `checkpoints` left a checkpoint."""
    study = optuna.create_study(study_name="s")
    previous = None
    for number in range(3):
        if previous is not None:
            enqueue(study, {}, TrialRecord(retry_of=previous, retries=number))
        trial = study.ask()
        if number < 2:
            study.tell(trial, state=TrialState.FAIL)
        previous = number
    for number in checkpoints:
        folder = tmp_path / "checkpoints" / "s" / f"{number:05d}"
        (folder / "step-000000004").mkdir(parents=True)
        (folder / "step-000000004" / META).write_text("{}")
        (folder / LATEST).write_text("step-000000004")
    return study, trial


@pytest.mark.parametrize("checkpoints, resumes", [((0, 1), 1), ((0,), 0), ((), None)])
def test_a_retry_resumes_from_the_newest_checkpoint_along_its_chain(tmp_path, checkpoints, resumes):
    study, retry = _lost_and_retried(tmp_path, checkpoints=checkpoints)
    folders = trial_folders(study, retry, tmp_path, resume=True)
    assert folders.resumes_trial == resumes
    assert folders.checkpoints == tmp_path / "checkpoints" / "s" / "00002"
    assert folders.resume_from == (None if resumes is None else tmp_path / "checkpoints" / "s" / f"{resumes:05d}")


def test_with_resume_trials_off_the_retry_starts_from_scratch(tmp_path):
    study, retry = _lost_and_retried(tmp_path, checkpoints=(0, 1))
    assert trial_folders(study, retry, tmp_path, resume=False).resume_from is None
    assert SearchSection(search_space={"hidden_size": [8]}, resume_trials=False).resume_trials is False


def test_a_resumed_retry_records_the_trial_and_step_it_resumed_at(tmp_path):
    study = optuna.create_study(directions=["maximize"])
    trial = study.ask()
    folders = TrialFolders(tmp_path / "own", tmp_path / "logs", tmp_path / "lost", resumes_trial=0)
    ResumeRecorder(trial, folders).on_fit_begin(DistillationState(global_step=6), DistillationControl())
    record = TrialRecord.from_trial(trial)
    assert (record.resumed_from_trial, record.resumed_at_step) == (0, 6) and not record.figures
