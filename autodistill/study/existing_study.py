"""A study of the same name, before a search touches it: the same objectives, a compatible search
space, the same data and teacher; a new study finds no students of an earlier one in its folder.

`autodistill search` calls `check_existing_study` with the other checks at the edge
(autodistill/preflight.py), after the config is validated and before the teacher loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autodistill.errors import ConfigError
from autodistill.preflight import writable_folder


def check_existing_study(url: str, study_name: str, *, objectives: Sequence[Any], space: Any,
                         binding: Mapping[str, Any] | None = None, students: Path | None = None) -> None:
    """A study of this name, if the storage has one, has these objectives, a compatible space and
    the same data and teacher (`binding`, study/binding.py); if it has none, `students` (its folder
    of saved students) holds nothing of an earlier study of that name.

    Read-only: an existing database is checked to be Optuna's and the study loaded and compared,
    never changed; a missing SQLite file is created, as the search will."""
    import optuna

    from autodistill.study.storage import open_existing_storage, open_storage, open_study, sqlite_path

    # first: students saved before the study is found absent are an earlier study's, never this one's
    had_students = students is not None and students.is_dir() and any(students.iterdir())

    def refuse_earlier_students() -> None:
        if had_students:
            raise ConfigError(
                f"study {study_name!r} is not in storage {url!r}, but {str(students)!r} holds students saved "
                "by an earlier study of that name (its database deleted or elsewhere); they are not "
                "overwritten: give a new --study-name, or the earlier study's --storage")

    path = sqlite_path(url)
    if path is not None and not path.is_dir() and (not path.exists() or path.stat().st_size == 0):
        # no database yet, so no study: refused before the database is created, unless it cannot
        # be (then the storage's own error comes first)
        try:
            writable_folder(path.parent, key="--storage")
        except ConfigError:
            pass
        else:
            refuse_earlier_students()
        open_storage(url)  # a bad URL fails here (creating the database, as the search will)
        refuse_earlier_students()
        return
    # an existing SQLite file must be Optuna's: a foreign one is refused, never written into
    storage = (open_existing_storage(url, writable=True, wait_for_creation=True) if path is not None
               else open_storage(url))
    if study_name not in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
        refuse_earlier_students()
        return
    study = open_study(storage, study_name=study_name, directions=[o.direction for o in objectives],
                       metric_names=[o.name for o in objectives], sampler=None)
    wanted = space.distributions()
    seen: set[str] = set()
    for trial in study.get_trials(deepcopy=False):
        for name, old in trial.distributions.items():
            new = wanted.get(name)
            if new is None or name in seen:
                continue
            try:
                optuna.distributions.check_distribution_compatibility(old, new)
            except ValueError:
                raise ConfigError(
                    f"auto_distillation.search.search_space: study {study_name!r} searched {name} over "
                    f"{_describe(old)}; this config gives {_describe(new)}. A study keeps its search "
                    "space: restore it, or give another --study-name for the new space") from None
            seen.add(name)
    if binding is not None:
        check_study_binding(study, binding)


def check_study_binding(study: Any, binding: Mapping[str, Any]) -> None:
    """The study (an optuna.Study) was searched with this data, teacher and measurements, where it
    recorded them (a study from before bindings were recorded is bound by this run)."""
    from autodistill.study.binding import binding_differences
    from autodistill.study.record import StudyRecord

    recorded = StudyRecord.of(study).binding
    differences = binding_differences(dict(recorded), dict(binding)) if recorded else []
    if differences:
        kinds = {d.split(".", 1)[0] for d in differences}
        what = " and ".join(w for k, w in (("teacher", "another teacher"), ("data", "other data"),
                                           ("auto_distillation", "other measurements")) if k in kinds)
        raise ConfigError(
            f"{differences[0].split(' ', 1)[0]}: study {study.study_name!r} was searched with "
            f"{what}: {', '.join(differences)}; one study compares students of one teacher on one "
            "dataset, measured one way: give a new --study-name (or restore the data, teacher and "
            "measurements it was searched with)")


def _describe(distribution: Any) -> str:
    choices = getattr(distribution, "choices", None)
    if choices is not None:
        return "[" + ", ".join(str(c) for c in choices) + "]"
    return (f"{{low: {distribution.low}, high: {distribution.high}"
            + (f", step: {distribution.step}" if getattr(distribution, "step", None) else "")
            + (", log: true" if distribution.log else "") + "}")
