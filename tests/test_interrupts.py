"""Ctrl-C and SIGTERM never cut a database call short (autodistill/interrupts.py).

The signal is delivered for real (`signal.raise_signal`) at chosen points inside an Optuna
storage write, one line of Python at a time, the way a Ctrl-C lands wherever the main thread
happens to be. Before this, one point in a few hundred left a connection checked out in an
open transaction, holding SQLite's lock: the interrupted trial could not be recorded
(tests/test_faults.py saw a SIGTERM'd search take 92 s to exit).
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading

import optuna
import pytest

from autodistill import interrupts
from autodistill.study.storage import open_storage

POINTS = 160  # interrupt points spread over one write


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler, also where pytest was started from a shell's background
    (which leaves SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def storage_and_trial(tmp_path):
    db = tmp_path / "study.db"
    storage = open_storage(f"sqlite:///{db}")
    study = optuna.create_study(storage=storage, study_name="s")
    return db, storage, study.ask()._trial_id


def _in_the_database_layer(frame) -> bool:
    """A line of Optuna's storage or SQLAlchemy (not of the wrapper around them)."""
    name = frame.f_code.co_filename
    return "optuna" in name or "sqlalchemy" in name


def _lines_run_by(call) -> int:
    count = 0

    def trace(frame, event, arg):
        nonlocal count
        count += event == "line" and _in_the_database_layer(frame)
        return trace

    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(None)
    return count


def _signal_at_line(signum: int, line: int):
    """A trace function that delivers `signum` to this process as line `line` of the
    database layer starts."""
    seen = 0

    def trace(frame, event, arg):
        nonlocal seen
        if event == "line" and _in_the_database_layer(frame):
            seen += 1
            if seen == line:
                signal.raise_signal(signum)
        return trace
    return trace


def _database_is_free(db) -> bool:
    """Another connection can take the write lock at once."""
    connection = sqlite3.connect(db, timeout=0)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


def test_a_ctrl_c_anywhere_inside_a_storage_write_is_raised_after_the_write(ctrl_c_raises, storage_and_trial):
    db, storage, trial_id = storage_and_trial
    storage.set_trial_user_attr(trial_id, "x", -1)  # the path every later write takes
    lines = _lines_run_by(lambda: storage.set_trial_user_attr(trial_id, "x", -1))
    assert lines > POINTS
    for line in range(1, lines, lines // POINTS):
        with interrupts.handled(sigterm=False), pytest.raises(KeyboardInterrupt):
            sys.settrace(_signal_at_line(signal.SIGINT, line))
            try:
                storage.set_trial_user_attr(trial_id, "x", line)
            finally:
                sys.settrace(None)
        assert storage.get_trial_user_attrs(trial_id)["x"] == line, f"interrupt at line {line}: write lost"
        assert storage.engine.pool.checkedout() == 0, f"interrupt at line {line}: a connection was left out"
        assert _database_is_free(db), f"interrupt at line {line}: the database stayed locked"


def test_a_held_interrupt_is_raised_as_the_block_ends_and_a_second_one_at_once(ctrl_c_raises):
    reached = []
    with interrupts.handled(sigterm=False), pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            signal.raise_signal(signal.SIGINT)
            reached.append("after the first")
        reached.append("after the block")  # not reached: raised as the block ended
    assert reached == ["after the first"]

    with interrupts.handled(sigterm=False), pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # e.g. a database call stuck: Ctrl-C again
            reached.append("after the second")
    assert reached == ["after the first"]


def test_sigterm_raises_terminated_only_where_asked(ctrl_c_raises):
    previous = signal.getsignal(signal.SIGTERM)
    with interrupts.handled(sigterm=True), pytest.raises(interrupts.Terminated):
        with interrupts.deferred():
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is previous  # given back
    with interrupts.handled(sigterm=False):
        assert signal.getsignal(signal.SIGTERM) is previous  # a library call leaves SIGTERM alone


def test_an_ignored_or_application_ctrl_c_handler_is_left_in_place():
    for handler in (signal.SIG_IGN, lambda signum, frame: None):
        previous = signal.signal(signal.SIGINT, handler)
        try:
            with interrupts.handled(sigterm=False):
                assert signal.getsignal(signal.SIGINT) is handler
        finally:
            signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_nothing_is_installed_or_held(ctrl_c_raises):
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with interrupts.handled(sigterm=True), interrupts.deferred():
                assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []
