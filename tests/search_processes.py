"""`autodistill search` in subprocesses, and an SQLite study read without Optuna: for the
fault and worker tests and scripts/bench_resume.py.

    process = SearchProcess.start(config, logs=tmp_path / "run1")
    trial = process.stop_in_a_trial(db)        # SIGSTOPped while one of its trials runs
    process.kill()                             # or .interrupt(signal.SIGINT)
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def ctrl_c_works() -> None:
    """Popen's preexec_fn: the child takes SIGINT as Ctrl-C (KeyboardInterrupt) even when this
    process was started in the background of a shell, which sets SIGINT to ignored for it and,
    by inheritance, for its children."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class TrialRow:
    number: int
    state: str  # RUNNING, COMPLETE, PRUNED, FAIL, WAITING
    attrs: dict[str, Any]

    @property
    def trained(self) -> bool:
        """Completed by training (not a repeat of another trial's result)."""
        return self.state == "COMPLETE" and "repeat_of" not in self.attrs


def read_trials(db: Path, *, timeout: float = 30) -> list[TrialRow]:
    """Every trial of the (single) study in an SQLite study database; [] before its tables
    exist. Opened read-write, as a reader may be the first to open a database that a killed
    writer left with a hot journal (SQLite rolls it back then); it writes nothing."""
    if not db.exists():
        return []
    try:
        with closing(sqlite3.connect(db, timeout=timeout)) as connection:
            rows = connection.execute("SELECT trial_id, number, state FROM trials ORDER BY number").fetchall()
            attrs: dict[int, dict[str, Any]] = {}
            for trial_id, key, value in connection.execute(
                    "SELECT trial_id, key, value_json FROM trial_user_attributes"):
                attrs.setdefault(trial_id, {})[key] = json.loads(value)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # being created
            return []
        raise
    return [TrialRow(number, state, attrs.get(trial_id, {})) for trial_id, number, state in rows]


class SearchProcess:
    """One `autodistill search CONFIG --quiet` process, its stdout and stderr in files."""

    def __init__(self, popen: subprocess.Popen[bytes], logs: Path) -> None:
        self.popen, self.logs = popen, logs

    @classmethod
    def start(cls, config: Path, *args: str, logs: Path) -> SearchProcess:
        logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
            popen = subprocess.Popen([sys.executable, "-m", "autodistill.cli", "search", str(config), "--quiet",
                                      *args], stdout=out, stderr=err, env=env,
                                     preexec_fn=ctrl_c_works)
        return cls(popen, logs)

    @property
    def worker_suffix(self) -> str:
        return f":{self.popen.pid}"  # the end of the `worker` attribute of its trials

    def stderr(self) -> str:
        return (self.logs / "stderr").read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop_in_a_trial(self, db: Path, *, after_trained: int = 0, running_for: float = 0.2,
                        timeout: float = 300) -> TrialRow:
        """SIGSTOP this process while one of its own trials runs: one seen running for
        `running_for` seconds (so it trains: a repeat or an impossible architecture ends in
        milliseconds), once `after_trained` trials of the study are trained. That trial, still
        running when the process stopped."""
        deadline = time.monotonic() + timeout
        first_seen: dict[int, float] = {}
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"the search ended (rc {self.popen.returncode}) before a trial could be "
                                     f"caught running: {self.stderr()[-2000:]}")
            trials = read_trials(db)
            now = time.monotonic()
            mine = [t.number for t in trials if t.state == "RUNNING"
                    and str(t.attrs.get("worker", "")).endswith(self.worker_suffix)]
            first_seen = {n: first_seen.get(n, now) for n in mine}
            ready = [n for n in mine if now - first_seen[n] >= running_for]
            if ready and sum(t.trained for t in trials) >= after_trained:
                trial = {t.number: t for t in self._stop_and_read(db)}[ready[0]]
                if trial.state == "RUNNING":
                    return trial
                os.kill(self.popen.pid, signal.SIGCONT)  # it had just ended: catch the next one
            time.sleep(0.05)
        raise AssertionError(f"no trial of the search was seen running within {timeout} s")

    def go_on_for(self, seconds: float, db: Path) -> list[TrialRow]:
        """Let the stopped process run `seconds` more and stop it again; the trials then."""
        os.kill(self.popen.pid, signal.SIGCONT)
        time.sleep(seconds)
        return self._stop_and_read(db)

    def _stop_and_read(self, db: Path) -> list[TrialRow]:
        """SIGSTOP the process at a moment it holds no lock on the database (stopped inside a
        commit it would block every reader): the trials as it left them."""
        while True:
            os.kill(self.popen.pid, signal.SIGSTOP)
            try:
                return read_trials(db, timeout=1)
            except sqlite3.OperationalError:  # stopped while writing: let it finish
                os.kill(self.popen.pid, signal.SIGCONT)
                time.sleep(0.05)

    def kill(self) -> None:
        """kill -9, and reap it."""
        self.popen.kill()
        self.popen.wait(timeout=60)

    def interrupt(self, signum: int, timeout: float = 120) -> int:
        """Send `signum` to the stopped process and let it go on; its exit code."""
        os.kill(self.popen.pid, signum)
        os.kill(self.popen.pid, signal.SIGCONT)
        return self.popen.wait(timeout=timeout)
