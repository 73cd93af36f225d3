"""Study storage: a URL becomes an Optuna RDB storage once, at the edge.

The default is `sqlite:///<output_dir>/study.db`; any SQLAlchemy URL works the same way
(PostgreSQL for several workers). An unreachable URL, or a study of the same name with
other objectives, is a `StorageError` that says what to change.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import optuna

from autodistill.errors import StorageError


def default_storage_url(output_dir: str | Path) -> str:
    return f"sqlite:///{Path(output_dir) / 'study.db'}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    try:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True}
                                          if not url.startswith("sqlite") else None)
    except Exception as exc:  # sqlalchemy raises many kinds; all mean the same to the user
        raise StorageError(
            f"cannot open study storage {url!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}. "
            "Check the URL (e.g. sqlite:///runs/x/study.db or postgresql://user@host/db) and that "
            "the server is reachable"
        ) from None


def open_study(storage: optuna.storages.BaseStorage, *, study_name: str, directions: Sequence[str],
               metric_names: Sequence[str], sampler: optuna.samplers.BaseSampler | None) -> optuna.Study:
    """Create the study, or load it when it exists with the same objectives."""
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    if study_name in existing:
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
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                directions=list(directions))
    with warnings.catch_warnings():  # experimental in Optuna, but what the dashboard reads
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(metric_names))
    logging.getLogger(__name__).info("created study %s", study_name)
    return study


def load_existing_study(url: str, study_name: str | None) -> optuna.Study:
    """A study to inspect (show, export, dashboard); with one study in the storage the name may be omitted."""
    storage = open_storage(url)
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
