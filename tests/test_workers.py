"""Several workers on one study: the budget is shared, no trial is lost, no architecture is
trained twice, and a trial whose worker died is failed and its architecture trained again.

The first tests play the other worker by hand in this process (its trial claimed on the same
storage, beating or not); the last ones run the real CLI N times at once, on SQLite and on a
private PostgreSQL server (tests/postgres_server.py; skipped where none can be started).
"""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from conftest import tiny_bert
from optuna.trial import TrialState
from postgres_server import PostgresServer, PostgresUnavailable
from search_processes import SearchProcess
from test_search import write_config

from autodistill.config.schema import SearchSection
from autodistill.study import lost_trials
from autodistill.study import record as attrs
from autodistill.study.search import AutoDistillation
from autodistill.study.trials import finished_count


def _agent(tmp_path, trained: list[int], max_trials: int, max_retries: int = 3) -> AutoDistillation:
    def train(model):
        trained.append(model.config.hidden_size)
        return model

    section = SearchSection(search_space={"hidden_size": [8, 16]}, search_algorithm="random",
                            metrics=["accuracy", "params"], higher_is_better=[True, False], seed=0,
                            max_trials=max_trials, heartbeat_seconds=1, heartbeat_grace_seconds=2,
                            max_retries=max_retries)
    return AutoDistillation(lambda a: tiny_bert(hidden=a["hidden_size"], layers=1, heads=2), section,
                            train_func=train, eval_func=lambda m: {"accuracy": 0.5, "params": 1.0},
                            storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="w", output_dir=tmp_path,
                            progress=False)


def _other_workers_trial(agent: AutoDistillation, hidden_size: int, *, worker: str | None = "elsewhere:1",
                         retries: int = 0):
    """A trial of `hidden_size` claimed by another worker (`worker=None`: one that died before
    recording itself), through its own connection to the storage; with one heartbeat.
    `retries`: how many times its architecture was lost before."""
    study = optuna.load_study(study_name=agent.study.study_name, storage=agent.storage.url)
    study.enqueue_trial({"hidden_size": hidden_size})
    trial = study.ask()
    architecture = agent.search_space.suggest(trial)
    attrs.write(trial, attrs.TrialRecord(architecture=architecture.to_dict(), architecture_key=architecture.key(),
                                         worker=worker or None, retries=retries or None))
    if worker:
        lost_trials.beat(agent.storage, trial)
    return study, trial


def _finish_later(study, trial, storage, *, seconds: float, values: list[float]) -> threading.Thread:
    """Beat for the trial, then complete it with `values`, as a live worker would."""
    def run() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            storage.record_heartbeat(trial._trial_id)
            time.sleep(0.2)
        study.tell(trial, values)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_trial_whose_worker_died_is_failed_and_its_architecture_trained_again(tmp_path):
    trained: list[int] = []
    agent = _agent(tmp_path, trained, max_trials=2)
    _, dead = _other_workers_trial(agent, 16)  # beats once, never again
    agent.search_loop()
    trials = agent.study.trials
    assert trials[dead.number].state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get(attrs.RETRY_OF) == dead.number]
    assert len(retries) == 1 and retries[0].params == {"hidden_size": 16}
    assert retries[0].state == TrialState.COMPLETE and attrs.REPEAT_OF not in retries[0].user_attrs
    assert sorted(trained) == [8, 16] and finished_count(agent.study) == 2


@pytest.mark.parametrize(("retries_before", "max_retries", "queued"), [(1, 2, True), (2, 2, False), (0, 0, False)])
def test_a_lost_architecture_is_queued_again_at_most_max_retries_times(tmp_path, retries_before, max_retries,
                                                                       queued):
    trained: list[int] = []
    agent = _agent(tmp_path, trained, max_trials=1, max_retries=max_retries)
    _, dead = _other_workers_trial(agent, 16, retries=retries_before)
    agent.search_loop()
    trials = agent.study.trials
    assert trials[dead.number].state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get(attrs.RETRY_OF) == dead.number]
    if queued:
        assert [t.user_attrs[attrs.RETRIES] for t in retries] == [retries_before + 1] and trained == [16]
    else:
        assert retries == [] and finished_count(agent.study) == 1


def test_a_running_trial_that_never_recorded_its_worker_is_failed_after_the_grace_period(tmp_path, monkeypatch):
    trained: list[int] = []
    agent = _agent(tmp_path, trained, max_trials=1)
    _, orphan = _other_workers_trial(agent, 16, worker=None)  # killed between ask and its first beat
    looks: list[tuple[bool, int]] = []  # after each look for lost trials: orphan still running, students trained
    fail_lost_trials = lost_trials.fail_lost_trials

    def look(study, **kwargs):
        fail_lost_trials(study, **kwargs)
        looks.append((study.trials[orphan.number].state == TrialState.RUNNING, len(trained)))

    monkeypatch.setattr(lost_trials, "fail_lost_trials", look)
    agent.search_loop()
    trials = agent.study.trials
    assert trials[orphan.number].state == TrialState.FAIL
    # younger than the grace period at the first look: left running, holding the only place of the
    # budget (nothing trained) until a later look failed it
    assert looks[0] == (True, 0) and (False, 0) in looks
    assert [t.params for t in trials if t.user_attrs.get(attrs.RETRY_OF) == orphan.number] == [{"hidden_size": 16}]
    assert trained == [16] and finished_count(agent.study) == 1


def test_an_architecture_another_worker_trains_is_waited_for_and_its_result_reused(tmp_path):
    trained: list[int] = []
    agent = _agent(tmp_path, trained, max_trials=2)
    study, other = _other_workers_trial(agent, 8)
    _finish_later(study, other, agent.storage, seconds=2.0, values=[0.9, 123.0])
    agent.study.enqueue_trial({"hidden_size": 8})  # this worker's first proposal: the same architecture
    agent.search_loop()
    twin = next(t for t in agent.study.trials if attrs.TWIN_OF in t.user_attrs)
    assert twin.user_attrs[attrs.TWIN_OF] == other.number and twin.params == {"hidden_size": 8}
    assert twin.state == TrialState.COMPLETE and twin.user_attrs[attrs.REPEAT_OF] == other.number
    assert twin.values == [0.9, 123.0]
    assert trained == [16]  # 8 was never trained here
    assert finished_count(agent.study) == 2


def test_a_worker_starts_no_trial_when_running_trials_of_others_fill_the_budget(tmp_path):
    trained: list[int] = []
    agent = _agent(tmp_path, trained, max_trials=1)
    study, other = _other_workers_trial(agent, 8)
    _finish_later(study, other, agent.storage, seconds=2.0, values=[0.9, 123.0])
    agent.search_loop()
    assert trained == [] and len(agent.study.trials) == 1  # it waited, then the budget was full
    assert finished_count(agent.study) == 1


def test_the_grace_period_must_outlast_a_heartbeat():
    with pytest.raises(ValueError, match=r"heartbeat_grace_seconds \(5\) must exceed heartbeat_seconds \(5\)"):
        SearchSection(search_space={"hidden_size": [8]}, heartbeat_seconds=5, heartbeat_grace_seconds=5)
    assert SearchSection(search_space={"hidden_size": [8]}, heartbeat_seconds=7).grace_seconds == 14


# -- the CLI started N times on one study ---------------------------------------------------

MAX_TRIALS = 6
WORKER_CONFIG = {"    max_trials: 4\n": f"    max_trials: {MAX_TRIALS}\n    heartbeat_seconds: 1\n"
                                          "    heartbeat_grace_seconds: 10\n",
                 "    train_steps: 4\n": "    train_steps: 20\n"}


def _run_workers(config, n: int, logs, *args: str) -> None:
    workers = [SearchProcess.start(config, *args, logs=logs / f"worker{i}") for i in range(n)]
    for worker in workers:
        assert worker.wait(timeout=600) == 0, worker.stderr()


def _check_shared_study(study: optuna.Study, n_workers: int) -> None:
    trials = study.get_trials()
    assert finished_count(study) == MAX_TRIALS  # the budget was shared, not spent N times
    assert all(t.state.is_finished() for t in trials)  # nothing left running or queued
    retried = {t.user_attrs.get(attrs.RETRY_OF) for t in trials}
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert all(t.number in retried for t in failed)  # none failed here; a lost one would be retried
    trained = [t.user_attrs[attrs.ARCHITECTURE_KEY] for t in trials
               if t.state == TrialState.COMPLETE and attrs.REPEAT_OF not in t.user_attrs]
    assert len(trained) == len(set(trained))  # no architecture trained twice
    assert len({t.user_attrs[attrs.WORKER] for t in trials}) == n_workers  # every worker took part


def test_two_workers_on_sqlite_share_the_budget(workspace, tmp_path):
    out = tmp_path / "run"
    config = write_config(workspace, out, **WORKER_CONFIG)
    _run_workers(config, 2, tmp_path)
    _check_shared_study(optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}"), 2)


@pytest.fixture(scope="module")
def postgres():
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server could be started here: {exc}")
    yield server
    server.stop()


def test_three_workers_on_postgresql_share_the_budget(workspace, tmp_path, postgres):
    url = postgres.create_database("three_workers")
    out = tmp_path / "run"
    config = write_config(workspace, out, **WORKER_CONFIG)
    _run_workers(config, 3, tmp_path, "--storage", url)
    _check_shared_study(optuna.load_study(study_name="tiny", storage=url), 3)
