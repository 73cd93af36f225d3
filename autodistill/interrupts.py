"""Ctrl-C and SIGTERM stop a search between database calls, never inside one.

Python raises KeyboardInterrupt wherever the main thread happens to be when Ctrl-C arrives,
also halfway through a storage write. SQLAlchemy's session can then leave its connection
checked out in an open transaction (seen as `IllegalStateChangeError`): on SQLite that
connection keeps the database locked, so the write that records the interrupted trial waits
for the busy timeout and fails, and the trial is only found lost a grace period later (found
by CI: a SIGTERM'd search took 92 s to exit instead of 1).

While `handled()` is active in the main thread, SIGINT raises KeyboardInterrupt and SIGTERM
(where asked) raises `Terminated`, a KeyboardInterrupt, except inside `deferred()` blocks (the
storage calls, study/storage.py): there the signal is held and raised as the block ends. A
second signal while one is held raises at once: a storage call stuck on an unreachable
database can still be left.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: a running search records its trial as interrupted."""


_depth = 0  # deferred() blocks open in the main thread
_held: int | None = None  # a signal that arrived inside one


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _held
    if _depth and _held is None:
        _held = signum
        return
    _held = None
    raise _interrupt(signum)


@contextmanager
def deferred() -> Iterator[None]:
    """A signal handled by `handled()` that arrives inside this block is raised as it ends."""
    global _depth, _held
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _held is not None:
            signum, _held = _held, None
            raise _interrupt(signum)


@contextmanager
def handled(*, sigterm: bool) -> Iterator[None]:
    """Ctrl-C (and SIGTERM when `sigterm`) raise outside `deferred()` blocks for this block.

    Ctrl-C keeps any handler the application set instead of Python's own, and stays ignored
    where it is ignored (a job started in the background of a shell); a nested `handled()`
    changes nothing. Outside the main thread this does nothing: no signal reaches it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _on_signal)
    if sigterm and signal.getsignal(signal.SIGTERM) is not _on_signal:
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


__all__ = ["Terminated", "deferred", "handled"]
