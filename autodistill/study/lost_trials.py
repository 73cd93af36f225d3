"""Trials whose worker is gone: found by their heartbeat, failed, and tried again.

While a trial runs, its worker beats a heartbeat in the study storage (`TrialHeartbeat`:
Optuna's heartbeat table, every `search.heartbeat_seconds`). Before it claims a trial, every
worker calls `fail_lost_trials`: a running trial whose last beat is older than the grace
period (its worker was killed with -9, its machine died, its network went away) is marked
failed, and its architecture is queued again (`retry_lost`, the storage's stale-trial
callback), so the study loses no trial. A running trial that never recorded its
worker (killed between Optuna's `ask` and its first beat, or left by a version without
heartbeats) is failed the same way once it is older than the grace period. A running trial
whose recorded worker (`host:pid`) is a process of this host that no longer exists (a worker
resuming after its own kill -9) is failed at once, without waiting out the grace period.

An architecture is queued again at most `search.max_retries` times (default 3: its worker
may be killed every time, e.g. by the kernel's out-of-memory killer); Ctrl-C and SIGTERM
count as well.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
from datetime import datetime, timedelta
from types import TracebackType

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodistill.atomic_file import process_alive
from autodistill.study.record import TrialRecord, enqueue

log = logging.getLogger(__name__)

STOP_WAIT_SECONDS = 1  # how long the end of a trial waits for a beat in progress


def beat(storage: optuna.storages.RDBStorage, trial: optuna.Trial) -> None:
    """Record one heartbeat of a running trial now."""
    storage.record_heartbeat(trial._trial_id)  # Optuna's own heartbeat thread passes the same id


class TrialHeartbeat:
    """Beats for one running trial every `interval` seconds, in a background thread, while
    the `with` block runs."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial: optuna.Trial, interval: float) -> None:
        self.storage, self.trial, self.interval = storage, trial, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial.number}", daemon=True)

    def __enter__(self) -> TrialHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(STOP_WAIT_SECONDS)  # a daemon: a beat stuck on the database never delays an exit

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                beat(self.storage, self.trial)
            except Exception as exc:  # the database is away for a moment: the next beat may pass
                log.warning("heartbeat of trial %d not recorded: %s: %s", self.trial.number,
                            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")


def retry_architecture(study: optuna.Study, trial: FrozenTrial, *, max_retries: int) -> None:
    """Queue the architecture of a lost or interrupted trial again, unless it was retried
    `max_retries` times already: the next trial any worker claims trains it (Optuna's `ask`
    takes queued trials first)."""
    record = TrialRecord.from_trial(trial)
    if record.architecture_key is None:
        return  # lost before its architecture was chosen: nothing to try again
    retries = int(record.retries or 0)
    if retries >= max_retries:
        log.warning("the architecture of trial %d (%s) was tried %d times more already: not queued again",
                    trial.number, trial.params, retries)
        return
    enqueue(study, trial.params, TrialRecord(retry_of=trial.number, retries=retries + 1))
    log.info("the architecture of trial %d (%s) is queued again", trial.number, trial.params)


def retry_lost(study: optuna.Study, trial: FrozenTrial, *, max_retries: int) -> None:
    """The storage's stale-trial callback (bind `max_retries` with functools.partial): Optuna
    has just failed `trial` for lack of heartbeats."""
    log.warning("trial %d lost its worker (no heartbeat within the grace period): failed; its "
                "architecture is queued again", trial.number)
    retry_architecture(study, trial, max_retries=max_retries)


def dead_here(worker: str) -> bool:
    """Whether `worker` (`host:pid`) names a process of this host that no longer runs."""
    host, _, pid = worker.rpartition(":")
    return (host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid()
            and not process_alive(int(pid)))


def _why_lost(trial: FrozenTrial, cutoff: datetime, grace_seconds: int) -> str | None:
    """Why a running trial is lost, or None while its worker may still be at it."""
    worker = TrialRecord.from_trial(trial).worker
    if worker is not None:
        return f"its worker {worker} no longer runs on this host" if dead_here(str(worker)) else None
    if trial.datetime_start is None or trial.datetime_start > cutoff:
        return None
    return f"it never recorded its worker and started over {grace_seconds} s ago"


def fail_lost_trials(study: optuna.Study, *, grace_seconds: int, max_retries: int) -> None:
    """Fail the running trials whose worker is gone and queue their architectures again."""
    with warnings.catch_warnings():  # experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # calls the storage's callback: retry_lost
    cutoff = datetime.now() - timedelta(seconds=grace_seconds)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = _why_lost(trial, cutoff, grace_seconds)
        if why is None:
            continue
        try:
            failed = study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker failed it first
        log.warning("trial %d is lost (%s): failed", trial.number, why)
        retry_architecture(study, failed, max_retries=max_retries)  # a trial of an older version has its architecture
