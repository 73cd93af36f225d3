"""Run a search from a config file: what `autodistill search CONFIG.yaml` does.

What can fail without the teacher's weights or the data (an unwritable output folder, a
missing teacher, a space with no valid architecture, a mapping to a missing module, a bad
storage URL, a study of this name with other objectives) fails first, before the teacher or
data are loaded and before the study is touched (`_preflight`); the teacher is evaluated
once per study (its figures live in the study). What is read at the end (the Pareto table,
`<output_dir>/pareto.json`, the report's figures and `report.md`) is written by the layer
above, `autodistill.report.search_report` (the CLI calls it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from autodistill.config.callables import import_callable
from autodistill.config.loader import load_config_file
from autodistill.config.schema import SearchRunConfig, SearchSection
from autodistill.errors import ConfigError
from autodistill.paths import check_name, inside
from autodistill.space import SearchSpace
from autodistill.study.binding import study_binding
from autodistill.study.protocol import TaskWithFunctions
from autodistill.study.record import StudyRecord
from autodistill.study.search import AutoDistillation
from autodistill.study.storage import check_writable, default_storage_url


@dataclass(frozen=True)
class SearchRun:
    """A finished (or continued) search: its study and its output folder."""

    study: optuna.Study
    output_dir: Path


def load_search_config(path: str | Path) -> SearchRunConfig:
    return load_config_file(SearchRunConfig, path)


def resolve_study(config: SearchRunConfig, *, storage: str | None = None, study_name: str | None = None,
                  output_dir: str | None = None) -> tuple[str, str, Path]:
    """(storage URL, study name, output dir) after command-line overrides. The name becomes the
    folder `<output_dir>/trials/<name>/`: one folder name, checked here (autodistill.paths)."""
    out = Path(output_dir if output_dir is not None else config.output_dir)
    url = storage or config.search.storage or default_storage_url(out)
    fix = "give another --study-name"
    if study_name is not None:
        name, key = study_name, "--study-name"
    elif config.search.study_name is not None:
        name, key = config.search.study_name, "auto_distillation.search.study_name"
    elif config.model is not None and config.model.name:
        name, key = config.model.name, "model.name (the study's name)"
    else:
        name, key = out.resolve().name, "output_dir (its folder name is the study's name)"
        fix = "set auto_distillation.search.study_name or give --study-name"
    return url, check_name(name, key=key, fix=fix), out


def _file_log(output_dir: Path) -> logging.Handler:
    output_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(output_dir / "search.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("autodistill")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def _preflight(config: SearchRunConfig, search: SearchSection, *, url: str, study_name: str,
               output_dir: Path, funcs: dict[str, Any]) -> dict[str, Any]:
    """What can be checked without the teacher's weights or the data fails here: before the log,
    the teacher (and its fine-tuning) and the study are touched (autodistill.preflight). The
    study's binding (its data and teacher fingerprints, study/binding.py) is returned."""
    from autodistill import preflight
    from autodistill.models.builders import student_config
    from autodistill.objectives import objectives_for
    from autodistill.study.existing_study import check_existing_study

    preflight.writable_folder(output_dir, key="output_dir")
    space = SearchSpace.from_mapping(search.search_space, source="search.search_space")
    training, latency = config.auto_distillation, config.auto_distillation.evaluation.latency
    preflight.check_device(training.device, key="auto_distillation.device")
    preflight.check_precision(training, key="auto_distillation")
    preflight.check_tensorboard(training, key="auto_distillation")
    preflight.check_device(latency.device, key="auto_distillation.evaluation.latency.device")
    section = config.teacher
    location = section.location()
    teacher_config = preflight.model_config(
        location, key="teacher.model" if section.model is not None else "teacher.model_package")
    lengths = {"data.max_length": config.data.max_length,
               "auto_distillation.evaluation.latency.sequence_length": latency.sequence_length}
    for key, length in lengths.items():
        preflight.check_sequence_length(teacher_config, length, key=key, whose="the teacher's")
    preflight.check_attn_implementation(section.model_cls, teacher_config, section.attn_implementation,
                                        key="teacher.attn_implementation")
    student = None
    if "model_builder" not in funcs:
        base = config.student.base_config(teacher_config, num_labels=teacher_config.num_labels)
        preflight.check_student_values(space, base, config.student.fixed,
                                       max_length=max(n for n in lengths.values() if n is not None))
        architecture = preflight.first_valid_architecture(space, base, config.student.fixed)
        if architecture is not None:
            student_cls = config.student.model_cls or section.model_cls
            first = student_config(base, {**config.student.fixed, **architecture})
            preflight.check_attn_implementation(student_cls, first, config.student.attn_implementation,
                                                key="student.attn_implementation")
            student = preflight.meta_model(student_cls, first)
    if "train_func" not in funcs:  # the built-in train function runs auto_distillation's stages
        preflight.check_mapping_paths(config.auto_distillation, student=student,
                                      teacher=preflight.meta_model(section.model_cls, teacher_config))
    if config.student_reads_other_tokens and config.student.tokenizer is not None:
        preflight.check_student_tokenizer(config.student.tokenizer, strategy=search.strategy)
    if search.strategy == "supernet":
        _preflight_supernet(search, space, teacher_config, funcs, task=config.task or "")
    # last: opening the storage may create it; a bad URL, a read-only database, another study of
    # this name, or one searched with other data or another teacher fails here
    binding = study_binding(config)
    check_writable(url)
    check_existing_study(url, study_name, space=space,
                         objectives=objectives_for(search.metrics, search.higher_is_better),
                         binding=binding, students=inside(output_dir, "trials", study_name))
    return binding


def _preflight_supernet(search: SearchSection, space: SearchSpace, teacher_config: Any,
                        funcs: dict[str, Any], *, task: str) -> None:
    """A supernet slices the built-in students of a task it trains: the space must fit inside
    the teacher's shape and name only keys the elastic forward supports."""
    from autodistill.config.supernet import strategy_refusal
    from autodistill.study.supernet_search import space_dimensions
    from autodistill.supernet import check_supernet_space

    refusal = strategy_refusal(task)
    if refusal is not None:
        raise ConfigError(refusal)

    if "model_builder" in funcs:
        raise ConfigError(
            "search.strategy: supernet slices students out of one weight-sharing network built from "
            "the teacher, so it cannot use search.model_builder; remove search.model_builder or set "
            "search.strategy: per_trial")
    check_supernet_space(teacher_config, space_dimensions(space))


def run_search(config: SearchRunConfig, *, storage: str | None = None, study_name: str | None = None,
               output_dir: str | None = None, max_trials: int | None = None,
               search_algorithm: str | None = None, strategy: str | None = None, quiet: bool = False,
               command: str | None = None) -> SearchRun:
    """Run (or continue) the search; `command`, the command line that ran it, is recorded."""
    from autodistill.study.task import DistillationTask

    url, name, out = resolve_study(config, storage=storage, study_name=study_name, output_dir=output_dir)
    search = config.search
    search = search.overridden(max_trials=max_trials, search_algorithm=search_algorithm, strategy=strategy)
    funcs = {key: import_callable(spec, key=f"search.{key}") for key in
             ("model_builder", "train_func", "eval_func") if (spec := getattr(search, key))}
    binding = _preflight(config, search, url=url, study_name=name, output_dir=out, funcs=funcs)
    handler = _file_log(out)
    try:
        task = DistillationTask(config, output_dir=out, quiet=quiet)
        if "model_builder" not in funcs:
            space = SearchSpace.from_mapping(search.search_space, source="search.search_space")
            task.check_space({d.name: d.choices[0] if hasattr(d, "choices") else d.low for d in space.dimensions})
        recorded = StudyRecord(data=task.splits.description, teacher_model=task.teacher_location,
                               binding=binding, search_command=command)
        if search.strategy == "supernet":
            from autodistill.study.supernet_search import run_supernet_search

            agent = run_supernet_search(task, config, search, storage_url=url, study_name=name,
                                        output_dir=out, study_record=recorded, progress=not quiet)
        else:
            agent = AutoDistillation(TaskWithFunctions(task, **funcs) if funcs else task, search,
                                     early_stopping=config.auto_distillation.early_stopping,
                                     storage_url=url, study_name=name, output_dir=out,
                                     study_record=recorded, progress=not quiet)
            agent.search_loop()
        return SearchRun(agent.study, out)
    finally:
        logging.getLogger("autodistill").removeHandler(handler)
        handler.close()


__all__ = ["SearchRun", "load_search_config", "resolve_study", "run_search"]
