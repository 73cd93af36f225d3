"""Faults: a search killed with -9, stopped with Ctrl-C or SIGTERM, and trials that fail.

The CLI runs in subprocesses on the tiny config of test_search.py (30 regular steps a trial,
heartbeat every second, grace 6 s), one study through three rounds of the same command: one
run killed with -9 inside a trial (after one trial was trained); two runs started together,
one stopped by Ctrl-C and the other by SIGTERM, each inside a trial; one run left to finish.
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import optuna
import pytest
import torch
from conftest import tiny_bert
from optuna.trial import TrialState
from search_processes import SearchProcess, TrialRow, read_trials
from test_search import write_config

from autodistill.config.schema import SearchSection
from autodistill.study.record import FAILURE_REASON
from autodistill.study.search import AutoDistillation, SearchStopped
from autodistill.study.trials import finished_count

MAX_TRIALS = 8
CHAIN_CONFIG = {"    max_trials: 4\n": f"    max_trials: {MAX_TRIALS}\n    heartbeat_seconds: 1\n"
                                         "    heartbeat_grace_seconds: 6\n",
                "    train_steps: 4\n": "    train_steps: 30\n",  # trials long enough to be caught running
                # room for every run of the chain: a space whose every architecture is trained ends
                # the search (rc 0) before a later run's trial can be caught running
                "      hidden_size: [8, 16, 24]\n": "      hidden_size: [8, 12, 16, 20, 24, 28, 32]\n"}


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def chain(workspace, tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "run"
    config = write_config(workspace, out, **CHAIN_CONFIG)
    db = out / "study.db"
    seen: dict = {}

    run = SearchProcess.start(config, logs=out.parent / "1-kill")
    seen["killed"] = run.stop_in_a_trial(db, after_trained=1)
    run.kill()
    seen["students"] = {t.number: (t.attrs["student_path"], _files(Path(t.attrs["student_path"])))
                        for t in read_trials(db) if t.trained}

    runs = {name: SearchProcess.start(config, logs=out.parent / f"2-{name}") for name in ("sigint", "sigterm")}
    for name, signum in (("sigint", signal.SIGINT), ("sigterm", signal.SIGTERM)):
        trial = runs[name].stop_in_a_trial(db)
        seen[name] = {"trial": trial.number, "rc": runs[name].interrupt(signum), "stderr": runs[name].stderr(),
                      "worker": runs[name].worker_suffix}

    run = SearchProcess.start(config, logs=out.parent / "3-finish")
    assert run.wait(timeout=600) == 0, run.stderr()
    seen["final"] = {t.number: t for t in read_trials(db)}
    seen["study"] = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    return seen


def _retried(trials: dict[int, TrialRow], number: int) -> TrialRow:
    """The trial that finally ran the architecture of `number` (following retry_of)."""
    while True:
        retry = next((t for t in trials.values() if t.attrs.get("retry_of") == number), None)
        if retry is None:
            return trials[number]
        number = retry.number


def test_a_killed_search_resumes_with_its_trained_trials_and_students_intact(chain):
    final = chain["final"]
    assert chain["students"], "no trial was trained before the kill"
    for number, (path, files) in chain["students"].items():
        assert final[number].trained and final[number].attrs["student_path"] == path
        assert _files(Path(path)) == files  # not rewritten, not removed


def test_the_killed_trial_is_failed_and_its_architecture_trained_again(chain):
    final, killed = chain["final"], chain["killed"]
    assert final[killed.number].state == "FAIL"
    assert FAILURE_REASON not in final[killed.number].attrs  # lost, not failed: it costs no budget
    retry = _retried(final, killed.number)
    assert retry.number != killed.number and retry.attrs["architecture"] == killed.attrs["architecture"]
    assert retry.state in ("COMPLETE", "PRUNED")


@pytest.mark.parametrize("name, rc", [("sigint", 130), ("sigterm", 143)])
def test_ctrl_c_and_sigterm_stop_in_their_trial_and_say_how_to_resume(chain, name, rc):
    run = chain[name]
    assert run["rc"] == rc, run["stderr"]
    # it stopped in the trial it was in: that trial is its last (none started after the signal)
    mine = [n for n, t in chain["final"].items() if str(t.attrs.get("worker", "")).endswith(run["worker"])]
    assert max(mine) == run["trial"]
    assert "run the same command again to resume" in run["stderr"]
    assert "Traceback" not in run["stderr"]


@pytest.mark.parametrize("name", ["sigint", "sigterm"])
def test_an_interrupted_trial_is_recorded_and_its_architecture_trained_later(chain, name):
    final = chain["final"]
    trial = final[chain[name]["trial"]]
    assert trial.state == "FAIL" and trial.attrs["interrupted"] is True
    assert FAILURE_REASON not in trial.attrs
    retry = _retried(final, trial.number)
    assert retry.number != trial.number and retry.attrs["architecture"] == trial.attrs["architecture"]
    assert retry.state in ("COMPLETE", "PRUNED")


def test_after_kill_and_interrupts_the_study_ends_with_exactly_max_trials(chain):
    assert finished_count(chain["study"]) == MAX_TRIALS
    assert not [t for t in chain["final"].values() if t.state in ("RUNNING", "WAITING")]  # nothing left behind


# -- failing trials (the library API, in this process) ------------------------------------

def _section(**extra) -> SearchSection:
    return SearchSection(search_space={"hidden_size": [8, 16], "num_hidden_layers": {"low": 1, "high": 3}},
                         search_algorithm="random", metrics=["accuracy", "params"],
                         higher_is_better=[True, False], max_trials=3, seed=1, **extra)


def _eval(model):
    return {"accuracy": 0.5, "params": sum(p.numel() for p in model.parameters())}


def _agent(tmp_path, train, builder=None, **extra) -> AutoDistillation:
    return AutoDistillation(builder or (lambda a: tiny_bert(hidden=a["hidden_size"], layers=a["num_hidden_layers"],
                                                            heads=2)),
                            _section(**extra), train_func=train, eval_func=_eval,
                            storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="f", output_dir=tmp_path,
                            progress=False)


def test_a_nan_loss_fails_the_trial_with_its_stage_and_step(tmp_path):
    from conftest import toy_batches

    from autodistill import Distiller

    def build(arch):
        student = tiny_bert(hidden=arch["hidden_size"], layers=arch["num_hidden_layers"], heads=2)
        if arch["hidden_size"] == 16:
            with torch.no_grad():
                student.classifier.weight.fill_(float("nan"))
        return student

    def train(model):
        config = {"progress": False, "regular_distillation": {"train_steps": 3, "loss_types": ["KL", "CE"]}}
        Distiller(tiny_bert(hidden=16, layers=1, heads=2, seed=9).eval(), model, config).fit(toy_batches(2))
        return model

    agent = _agent(tmp_path, train, build, max_consecutive_failures=10)
    agent.search_loop()
    failed = [t for t in agent.study.trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["hidden_size"] == 16 for t in failed)
    for t in failed:
        reason = t.user_attrs[FAILURE_REASON]
        assert reason.startswith("NonFiniteLossError: loss became nan in stage ") and "at step 0" in reason
    assert finished_count(agent.study) == 3  # the failed trials count; the search went on


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   MemoryError()], ids=["cuda", "host"])
def test_running_out_of_memory_fails_the_trial_and_the_search_goes_on(tmp_path, error):
    def train(model):
        if model.config.hidden_size == 16:
            raise error
        return model

    agent = _agent(tmp_path, train, max_consecutive_failures=10)
    agent.search_loop()
    failed = [t for t in agent.study.trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["hidden_size"] == 16 for t in failed)
    expected = "OutOfMemoryError: CUDA out of memory" if isinstance(error, torch.cuda.OutOfMemoryError) \
        else "MemoryError: (no message)"
    assert all(t.user_attrs[FAILURE_REASON].startswith(expected) for t in failed)
    assert finished_count(agent.study) == 3


def test_out_of_memory_in_a_row_stops_the_search_with_the_reason(tmp_path):
    def train(model):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    agent = _agent(tmp_path, train, max_consecutive_failures=2)
    with pytest.raises(SearchStopped, match="2 trials failed in a row.*OutOfMemoryError: CUDA out of memory"):
        agent.search_loop()
    assert finished_count(agent.study) == 2
