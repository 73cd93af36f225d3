"""Study storage: a URL becomes an Optuna RDB storage once, at the edge.

The default is `sqlite:///<output_dir>/study.db`; any SQLAlchemy URL works the same way
(PostgreSQL for several workers). An unreachable URL, or a study of the same name with
other objectives, is a `StorageError` that says what to change.

Workers started together on a new database race to create its tables and the study; the
losers retry or load what the winner created. A search's storage beats a heartbeat for
every running trial (study/lost_trials.py): `heartbeat_seconds` and `grace_seconds` become
Optuna's `heartbeat_interval` and `grace_period`, and `on_lost` its stale-trial callback.
Every call into the database holds back Ctrl-C and SIGTERM until it has ended
(`InterruptSafeStorage`, interrupts.py).

Only a search creates a database. `load_existing_study` (show, report, export, dashboard)
opens one that exists and holds Optuna's tables, and never writes: an SQLite file is opened
read-only (`mode=ro`), tables are never created, and a missing, empty or foreign file is a
`StorageError`, not a new database.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial

from autodistill import interrupts
from autodistill.errors import StorageError
from autodistill.objectives import Direction


def default_storage_url(output_dir: str | Path) -> str:
    return f"sqlite:///{Path(output_dir) / 'study.db'}"


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL (None for any other URL or an in-memory database)."""
    if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


# the tables every Optuna RDB storage has (Optuna writes them when it creates a database)
OPTUNA_TABLES = frozenset({"studies", "trials", "version_info", "alembic_version"})


SCHEMA_ATTEMPTS = 5  # workers creating the tables of a new database at once: the losers retry
SQLITE_BUSY_SECONDS = 30  # how long an SQLite writer waits for another process's transaction


def open_storage(url: str, *, heartbeat_seconds: int | None = None, grace_seconds: int | None = None,
                 on_lost: Callable[[optuna.Study, FrozenTrial], None] | None = None
                 ) -> optuna.storages.RDBStorage:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    attempt = 1
    while True:
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():  # the heartbeat arguments are experimental in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return InterruptSafeStorage(
                    url, engine_kwargs=_engine_kwargs(url), heartbeat_interval=heartbeat_seconds,
                    grace_period=grace_seconds, heartbeat_stale_trial_callback=on_lost)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            # the server answers, so another worker is creating the same tables: try again
            if attempt == SCHEMA_ATTEMPTS or not _reachable(url):
                raise _unreachable(url, exc) from None
        except Exception as exc:  # drivers raise many kinds; all mean the same to the user
            raise _unreachable(url, exc) from None
        time.sleep(random.uniform(0.1, 0.5) * attempt)
        attempt += 1


def _deferring_interrupts(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with interrupts.deferred():
            return method(*args, **kwargs)
    return call


def _calls_deferring_interrupts(cls: type[optuna.storages.RDBStorage]) -> type[optuna.storages.RDBStorage]:
    """Every method of Optuna's RDB storage that opens a session: the public ones, the
    constructor (it may create the tables) and the stale-trial query of fail_stale_trials."""
    for name, method in vars(optuna.storages.RDBStorage).items():
        if callable(method) and (not name.startswith("_") or name in ("__init__", "_get_stale_trial_ids")):
            setattr(cls, name, _deferring_interrupts(method))
    return cls


@_calls_deferring_interrupts
class InterruptSafeStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage whose database calls are never cut short by Ctrl-C or SIGTERM:
    an interrupt landing inside one is raised when it returns (interrupts.deferred), so no
    connection is left in a transaction holding the database's lock."""


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    return {"pool_pre_ping": True}


def _reachable(url: str) -> bool:
    try:
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect():
                return True
        finally:
            engine.dispose()
    except Exception:
        return False


def _unreachable(url: str, exc: Exception) -> StorageError:
    return StorageError(
        f"cannot open study storage {url!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}. "
        "Check the URL (e.g. sqlite:///runs/x/study.db or postgresql://user@host/db) and that "
        "the server is reachable"
    )


def open_study(storage: optuna.storages.BaseStorage, *, study_name: str, directions: Sequence[Direction],
               metric_names: Sequence[str], sampler: optuna.samplers.BaseSampler | None) -> optuna.Study:
    """Create the study, or load it when it exists with the same objectives."""
    if study_name not in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
        try:
            study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                        directions=list(directions))
        except optuna.exceptions.DuplicatedStudyError:
            pass  # another worker created it a moment ago: load it below
        else:
            with warnings.catch_warnings():  # experimental in Optuna, but what the dashboard reads
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(metric_names))
            logging.getLogger(__name__).info("created study %s", study_name)
            return study
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    have = [d.name.lower() for d in study.directions]
    names = study.metric_names
    if have != list(directions) or (names is not None and list(names) != list(metric_names)):
        raise StorageError(
            f"study {study_name!r} exists with objectives {names or '?'} {have}, not "
            f"{list(metric_names)} {list(directions)}; choose another --study-name or the "
            "same metrics"
        )
    return study


def open_existing_storage(url: str, *, writable: bool = False,
                          wait_for_creation: bool = False) -> optuna.storages.RDBStorage:
    """The storage of an existing Optuna database, opened without creating anything: no file,
    folder or table. SQLite is opened read-only unless `writable` (the dashboard's notes).

    `wait_for_creation`: a database holding only some of Optuna's tables is one another worker
    is creating right now (Optuna writes its version tables after the others); it is read again
    for up to SQLITE_BUSY_SECONDS before it is refused as foreign."""
    fix = "give the --storage URL (or CONFIG.yaml / --output-dir) of a search's study.db"
    path = sqlite_path(url)
    open_url = url
    if path is not None:
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise StorageError(f"no study database at {str(path)!r} (it {what}); run `autodistill search` "
                               f"first, or {fix}")
        if path.stat().st_size == 0:
            raise StorageError(f"{str(path)!r} is an empty file, not an Optuna study database; {fix}")
        if not writable:
            open_url = f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    missing = sorted(OPTUNA_TABLES - _table_names(url, open_url, path, fix))
    while missing and wait_for_creation and len(missing) < len(OPTUNA_TABLES) and time.monotonic() < deadline:
        time.sleep(0.2)
        missing = sorted(OPTUNA_TABLES - _table_names(url, open_url, path, fix))
    if missing:
        raise StorageError(f"storage {url!r} is not an Optuna study database (no table {', '.join(missing)}); "
                           f"{fix}")
    try:
        return InterruptSafeStorage(open_url, engine_kwargs=_engine_kwargs(url), skip_table_creation=True)
    except Exception as exc:
        raise _unreachable(url, exc) from None


def _table_names(url: str, open_url: str, path: Path | None, fix: str) -> set[str]:
    """The tables of the database behind `open_url` (`url` as the user gave it), read without
    creating anything."""
    engine = sqlalchemy.create_engine(open_url, **_engine_kwargs(url))
    try:
        with interrupts.deferred():
            return set(sqlalchemy.inspect(engine).get_table_names())
    except sqlalchemy.exc.DatabaseError as exc:  # "file is not a database", a refused connection
        if path is not None:  # the file exists (checked above): SQLite cannot read it
            raise StorageError(f"{str(path)!r} is not an Optuna study database "
                               f"({str(exc.orig).splitlines()[0]}); {fix}") from None
        raise _unreachable(url, exc) from None
    except Exception as exc:  # drivers raise many kinds; all mean the same to the user
        raise _unreachable(url, exc) from None
    finally:
        engine.dispose()


def load_existing_study(url: str, study_name: str | None, *, writable: bool = False) -> optuna.Study:
    """A study to inspect (show, report, export; the dashboard with `writable`); with one study
    in the storage the name may be omitted. Nothing is created or written (open_existing_storage)."""
    storage = open_existing_storage(url, writable=writable)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if study_name is None:
        if len(names) != 1:
            raise StorageError(
                f"storage {url!r} holds {len(names)} studies ({', '.join(names) or 'none'}); "
                "name one with --study-name"
            )
        study_name = names[0]
    if study_name not in names:
        raise StorageError(f"storage {url!r} has no study {study_name!r}; it has: {', '.join(names) or 'none'}")
    return optuna.load_study(study_name=study_name, storage=storage)


def check_writable(url: str, *, key: str = "--storage") -> None:
    """A search can write its SQLite database: the file (if it exists) and its folder (SQLite's
    journal) take writes. Other storages answer for themselves when the search opens them."""
    path = sqlite_path(url)
    if path is None or not path.exists():
        return
    folder = path.parent
    for what, where in (("file", path), ("folder", folder)):
        if not os.access(where, os.W_OK):
            raise StorageError(f"{key}: the study database {str(path)!r} is read-only (its {what} "
                               f"{str(where)!r} takes no writes); a search writes its trials there: fix the "
                               "permissions, or copy the database to a writable place and give that --storage")
