"""One worker at a time claims a trial: a lock shared by every worker of a storage.

Claiming a trial reads the study (how many trials are finished and running, which
architectures are being trained) and then starts a trial; two workers doing that at once
could both take the last slot of `max_trials`, or both start the same architecture. So the
claim runs under this lock, held for milliseconds (never while a student trains):

- SQLite: an exclusive `flock` on `<database>.lock` beside the database file (one machine);
- PostgreSQL: a transaction-level advisory lock keyed by the study name (any number of
  machines; released by the server if the worker dies);
- other databases: a lock inside this process only, with a warning that workers in other
  processes may overshoot `max_trials` or train an architecture twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
import sqlalchemy

log = logging.getLogger(__name__)

_IN_PROCESS = threading.Lock()
_warned: set[str] = set()  # dialects warned about, once per process


@contextmanager
def claim_lock(storage: optuna.storages.RDBStorage, study_name: str) -> Iterator[None]:
    """Hold the workers' lock of this storage and study for the `with` block."""
    engine = storage.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection, connection.begin():
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": _advisory_key(study_name)})
            yield
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and database != ":memory:":
        import fcntl

        with open(f"{database}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if engine.dialect.name != "sqlite" and engine.dialect.name not in _warned:
        _warned.add(engine.dialect.name)
        log.warning("storage %s: workers of one study are coordinated on SQLite and PostgreSQL "
                    "only; run a single worker here, or workers may exceed max_trials",
                    engine.dialect.name)
    with _IN_PROCESS:
        yield


def _advisory_key(study_name: str) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock, the same in every worker."""
    digest = hashlib.sha256(f"autodistill claim {study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
