"""Distil one given student from a config file: what `autodistill distill CONFIG.yaml` runs."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader
from transformers import PreTrainedModel

from autodistill.config.loader import load_config_file
from autodistill.config.schema import DistillRunConfig, TeacherSection
from autodistill.data import LabelledTexts, PairedInputs, TokenizedDataset, make_loader, read_text_file
from autodistill.data.examples import check_teacher_classes
from autodistill.data.validation_sets import named_files, read_validation_sets
from autodistill.distill.checkpoint import LATEST, latest
from autodistill.distill.distiller import Distiller, FitResult, seed_everything
from autodistill.errors import ConfigError
from autodistill.evaluation import accuracy
from autodistill.models import build_student, load_pretrained
from autodistill.models.builders import with_vocabulary
from autodistill.preflight import (
    check_attn_implementation,
    check_device,
    check_distill_output,
    check_mapping_paths,
    check_precision,
    check_sequence_length,
    check_student_values,
    check_student_vocabulary,
    check_tensorboard,
    load_tokenizer,
    model_config,
    model_location,
    writable_folder,
)

SUMMARY = "distillation.json"  # written last: a folder holding it is an earlier run of `distill`
CHECKPOINTS = "checkpoints"  # <output_dir>/checkpoints: the run's checkpoints, removed when it is done


@dataclass
class DistillRunResult:
    output_dir: Path
    fit: FitResult
    seconds: float
    accuracy: float | None
    teacher_accuracy: float | None


def load_run_config(path: str | Path) -> DistillRunConfig:
    return load_config_file(DistillRunConfig, path)


def _teacher(section: TeacherSection) -> PreTrainedModel:
    if section.fine_tune is not None:
        raise ConfigError("teacher.fine_tune is used by `autodistill search`; `distill` takes an "
                          "already fine-tuned teacher: remove fine_tune or point model at it")
    return load_pretrained(section.location(), model_cls=section.model_cls, role="teacher",
                           num_labels=section.num_labels,
                           attn_implementation=section.attn_implementation)


def _check_resume(out: Path, *, resume: bool) -> None:
    """--resume needs a checkpoint in the output folder; a run without it never overwrites one."""
    found = latest(out / CHECKPOINTS)
    if resume and found is None:
        raise ConfigError(f"--resume: output_dir {str(out)!r} holds no checkpoint of an interrupted run "
                          f"(no {CHECKPOINTS}/{LATEST}); run without --resume to start")
    if not resume and found is not None:
        raise ConfigError(f"output_dir {str(out)!r} holds a checkpoint of an interrupted run "
                          f"({CHECKPOINTS}/{LATEST}), which this run would overwrite; add --resume to "
                          f"continue it, or delete {str(out / CHECKPOINTS)!r} to start over")


def _preflight(config: DistillRunConfig, *, resume: bool) -> None:
    """The output folder takes files, the device exists, the model folders exist and their configs
    take the inputs and the student's overrides, and the output folder is no model folder the
    run reads and holds nothing but an earlier run of its own: all before any weights are loaded."""
    writable_folder(config.output_dir, key="output_dir")
    if config.data.train_file is None:
        raise ConfigError(f"data.corpus: `autodistill distill` reads data.train_file and data.validation_file, "
                          f"not the built-in {config.data.corpus} corpus (which `autodistill search` splits); "
                          "give the files")
    check_device(config.distillation.device, key="distillation.device")
    check_precision(config.distillation, key="distillation")
    check_tensorboard(config.distillation, key="distillation")
    reads = {}
    for i, section in enumerate(config.teacher_list):
        key = "teacher.model" if config.teacher is not None else f"teachers.{i}.model"
        if section.model is not None:
            teacher_config = model_config(section.model, key=key)
            check_sequence_length(teacher_config, config.data.max_length, key="data.max_length",
                                  whose=f"{key} {section.model!r}'s")
            check_attn_implementation(section.model_cls, teacher_config, section.attn_implementation,
                                      key=f"{key.removesuffix('.model')}.attn_implementation")
            if i == 0:  # the student is built from the first teacher's config
                check_student_values(None, teacher_config, config.student.overrides,
                                     max_length=config.data.max_length, fixed_key="student.overrides")
            reads[key] = section.model
    for key, location in (("student.model", config.student.model), ("data.tokenizer", config.data.tokenizer),
                          ("student.tokenizer", config.student.tokenizer)):
        if location is not None:
            model_location(location, key=key, tokenizer=key == "student.tokenizer")
            reads[key] = location
    out = Path(config.output_dir)
    _check_resume(out, resume=resume)
    # an interrupted run's folder holds its checkpoints (and no summary yet): it is this run's own
    check_distill_output(out, reads=reads, own_file=f"{CHECKPOINTS}/{LATEST}" if resume else SUMMARY)


def _student_tokenizer(config: DistillRunConfig) -> Any:
    """The student's own tokenizer (`student.tokenizer`, other than the teacher's), or None; a saved
    student (student.model) must have an embedding row for each of its tokens."""
    if not config.student_reads_other_tokens:
        return None
    assert config.student.tokenizer is not None
    tokenizer = load_tokenizer(config.student.tokenizer, key="student.tokenizer")
    if config.student.model is not None:
        check_student_vocabulary(model_config(config.student.model, key="student.model"), tokenizer,
                                 key="student.model")
    return tokenizer


def run_distillation(config: DistillRunConfig, *, quiet: bool = False, resume: bool = False
                     ) -> DistillRunResult:
    """Load teachers, data and student; distil (checkpointing into <output_dir>/checkpoints, resuming
    from there with `resume`); save student, matchers and tokenizer; evaluate."""
    started = time.perf_counter()
    _preflight(config, resume=resume)
    student_tokenizer = _student_tokenizer(config)  # before the teachers: a bad one costs no load
    sections = config.teacher_list
    teachers = {s.name or f"teacher{i}": _teacher(s) for i, s in enumerate(sections)}
    first = next(iter(teachers.values()))
    student_cls = config.student.model_cls or sections[0].model_cls
    if config.student.model is not None:
        student = load_pretrained(config.student.model, model_cls=student_cls, role="student",
                                  attn_implementation=config.student.attn_implementation)
    else:  # seeded: one config gives one student, so a run and its resumption can be compared
        seed_everything(config.distillation.seed)
        teacher_config: Any = first.config
        base = teacher_config if student_tokenizer is None else with_vocabulary(teacher_config, student_tokenizer)
        student = build_student(base, config.student.overrides, model_cls=student_cls,
                                attn_implementation=config.student.attn_implementation)
    if len(teachers) == 1:  # a mapping names the key it is under before the data is read
        check_mapping_paths(config.distillation, teacher=first, student=student, prefix="distillation")

    data = config.data
    assert data.train_file is not None  # _preflight refuses a corpus
    tokenizer = load_tokenizer(data.tokenizer or sections[0].location(),
                               key="data.tokenizer" if data.tokenizer else "teacher.model")
    train = read_text_file(data.train_file, text_column=data.text_column,
                           label_column=data.label_column, label_names=data.label_names)
    for name, teacher in teachers.items():
        check_teacher_classes(train, teacher.config.num_labels, teacher=f"teacher {name!r}")
    teacher_set = TokenizedDataset(train, tokenizer, max_length=data.max_length)
    train_set = teacher_set if student_tokenizer is None else PairedInputs(  # each split tokenised once per model
        teacher_set, TokenizedDataset(train, student_tokenizer, max_length=data.max_length))
    loader = make_loader(train_set, batch_size=data.batch_size, shuffle=True,
                         seed=config.distillation.seed)

    def read(path: str) -> LabelledTexts:
        return read_text_file(path, text_column=data.text_column, label_column=data.label_column,
                              label_names=data.label_names)

    # read before training: a bad file stops the run at once; the first set is the one reported
    dev_sets = read_validation_sets(named_files(data.validation_file, data.validation_files), read, train,
                                    train_file=data.train_file, classes=True)
    def dev_loader_for(dev: LabelledTexts, reader: Any) -> DataLoader:
        return make_loader(TokenizedDataset(dev, reader, max_length=data.max_length),
                           batch_size=data.eval_batch_size, shuffle=False)

    # the student is scored on its own tokens (student.tokenizer), the teacher on its own
    dev_loaders = {name: dev_loader_for(dev, student_tokenizer or tokenizer) for name, dev in dev_sets.items()}
    dev_loader = teacher_dev_loader = next(iter(dev_loaders.values()), None)
    if dev_sets and student_tokenizer is not None:
        teacher_dev_loader = dev_loader_for(next(iter(dev_sets.values())), tokenizer)

    distiller = Distiller(teachers, student, config.distillation, quiet=quiet)
    out = Path(config.output_dir)
    checkpoints = out / CHECKPOINTS
    fit = distiller.fit(loader, eval_loaders=dev_loaders or None,
                        checkpoint_dir=checkpoints, resume_from=checkpoints if resume else None,
                        log_dir=out / "tensorboard")
    distiller.save(out)
    (student_tokenizer or tokenizer).save_pretrained(out)  # the tokenizer the saved student reads

    student_acc = teacher_acc = None
    if dev_loader is not None and teacher_dev_loader is not None:
        precision = distiller.plan.precision
        student_acc = accuracy(student, dev_loader, device=distiller.device, precision=precision)
        teacher_acc = accuracy(first, teacher_dev_loader, device=distiller.device, precision=precision)
    result = DistillRunResult(out, fit, time.perf_counter() - started, student_acc, teacher_acc)
    summary = {
        "stages": [{"name": s.name, "steps": len(s.losses), "first_loss": s.losses[0] if s.losses else None,
                    "last_loss": s.losses[-1] if s.losses else None,
                    "steps_per_second": s.steps_per_second} for s in fit.stages],
        "evaluations": [dataclasses.asdict(e) for e in fit.evaluations],
        "accuracy": student_acc, "teacher_accuracy": teacher_acc, "seconds": result.seconds,
        "student_parameters": sum(p.numel() for p in student.parameters()),
        "teacher_parameters": sum(p.numel() for p in first.parameters()),
    }
    (out / SUMMARY).write_text(json.dumps(summary, indent=2))
    shutil.rmtree(checkpoints, ignore_errors=True)  # the run is complete: nothing left to resume
    return result
