"""The workers' locks across processes: the claim lock of a SQLite study (study/worker_lock.py) and
a supernet's training lock (supernet/store.py). A second process waits while one holds the lock,
and a holder killed with SIGKILL leaves no lock behind (its lock file stays, unlocked).

Each child process appends what it does to a log file; the tests assert the order of those
events, never a duration."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import optuna
import pytest

from autodistill.study.worker_lock import claim_lock

# argv: kind (claim | supernet), location, log file, "hold" to hold the lock until killed
CHILD = """
import sys, time
from pathlib import Path

kind, location, log, hold = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4:] == ["hold"]
if kind == "claim":
    import optuna
    from autodistill.study.worker_lock import claim_lock
    lock = claim_lock(optuna.storages.RDBStorage(location), "study")
else:
    from autodistill.supernet.store import SupernetStore
    lock = SupernetStore(location, "key").training_lock()
with log.open("a") as f:
    f.write("child waits\\n")
with lock:
    with log.open("a") as f:
        f.write("child holds\\n")
    while hold:
        time.sleep(1)
"""


def claim(tmp_path: Path) -> tuple[str, Callable[[], AbstractContextManager[None]]]:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = optuna.storages.RDBStorage(url)  # the schema exists before a child opens it
    return url, lambda: claim_lock(storage, "study")


def supernet(tmp_path: Path) -> tuple[str, Callable[[], AbstractContextManager[None]]]:
    from autodistill.supernet.store import SupernetStore

    root = str(tmp_path / "supernets")
    return root, lambda: SupernetStore(root, "key").training_lock()


LOCKS = {"claim": claim, "supernet": supernet}


@pytest.fixture(params=sorted(LOCKS))
def lock(request, tmp_path) -> Iterator[tuple[str, str, Callable[[], AbstractContextManager[None]]]]:
    location, make = LOCKS[request.param](tmp_path)
    yield request.param, location, make


def start_child(kind: str, location: str, log: Path, *hold: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, kind, location, str(log), *hold])


def events(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def wait_for(log: Path, event: str, child: subprocess.Popen) -> None:
    """Until the child has logged `event` (a failure if it exits first or takes over a minute)."""
    deadline = time.monotonic() + 60
    while event not in events(log):
        assert child.poll() is None, f"the child exited ({child.returncode}) before {event!r}: {events(log)}"
        assert time.monotonic() < deadline, f"no {event!r} from the child: {events(log)}"
        time.sleep(0.05)


def test_a_second_process_waits_until_the_holder_releases(lock, tmp_path):
    kind, location, make = lock
    log = tmp_path / "events.log"
    with make():
        child = start_child(kind, location, log)
        try:
            wait_for(log, "child waits", child)
            time.sleep(0.5)  # room for a lock that does not exclude to let the child in
            with log.open("a") as f:
                f.write("parent releases\n")
        except BaseException:
            child.kill()
            raise
    assert child.wait(timeout=60) == 0
    assert events(log) == ["child waits", "parent releases", "child holds"]


def test_a_killed_holder_leaves_the_lock_free(lock, tmp_path):
    kind, location, make = lock
    log = tmp_path / "events.log"
    child = start_child(kind, location, log, "hold")
    try:
        wait_for(log, "child holds", child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert list(tmp_path.rglob("*.lock"))  # the lock file stays behind ...
    taken = threading.Event()

    def take() -> None:
        with make():
            taken.set()

    threading.Thread(target=take, daemon=True).start()
    assert taken.wait(timeout=60)  # ... and is free: the system released the dead holder's lock
    with make():  # and it is released again after use
        pass
