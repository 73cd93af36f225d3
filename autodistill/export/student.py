"""One trial's student as a folder to hand on: `from_pretrained` weights and config, the
tokenizer, a model card, optionally ONNX.

The folder is assembled under a temporary name next to the target and renamed at the end:
an interrupted or failed export leaves no half-written student, and the copy of one killed with -9
is removed by the next export into the same folder. The search saves the
tokenizer with every student; a student saved by a user's own `save_func` gets the
teacher's (the study's `teacher_model`), since students share the teacher's vocabulary.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodistill.atomic_file import write_folder_atomically
from autodistill.errors import ConfigError
from autodistill.export.model_card import MODEL_CARD, CardFacts, model_card
from autodistill.export.onnx import (
    OnnxCheck,
    QuantizationRequest,
    QuantizedCheck,
    export_onnx,
    export_quantized,
    require_onnx,
)
from autodistill.objectives import ACCURACY, EAGER_ACCURACY
from autodistill.paths import same_or_inside
from autodistill.preflight import writable_folder
from autodistill.study.record import StudyRecord, TrialRecord
from autodistill.study.trials import teacher_reference

TOKENIZER_FILE = "tokenizer_config.json"


@dataclass(frozen=True)
class ExportedStudent:
    folder: Path
    trial: int
    tokenizer_from: str | None   # "the search's student folder", the teacher's location, or None
    onnx: OnnxCheck | None
    quantized: QuantizedCheck | None = None


def completed_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial `number`, which must be completed; a repeat stands for the trial it repeats."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    trial = trials.get(number)
    if trial is None or trial.state != TrialState.COMPLETE:
        done = sorted(n for n, t in trials.items() if t.state == TrialState.COMPLETE)
        raise ConfigError(f"trial {number} is not a completed trial of study {study.study_name!r}; "
                          f"completed: {done}")
    repeated = TrialRecord.from_trial(trial).repeat_of
    return trials[repeated] if repeated is not None and repeated in trials else trial


def _model_class(folder: Path) -> str | None:
    config = folder / "config.json"
    if not config.exists():
        return None
    names = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    return names[0] if names else None


def _add_tokenizer(folder: Path, teacher_model: str | None) -> str | None:
    """Where the folder's tokenizer came from; the teacher's is saved into it when it has none."""
    if (folder / TOKENIZER_FILE).exists():
        return "the search's student folder"
    if not teacher_model:
        return None
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(teacher_model)
    except (OSError, ValueError):
        return None
    tokenizer.save_pretrained(folder)
    return teacher_model


def _onnx(folder: Path, model_class: str | None) -> OnnxCheck:
    import transformers

    cls = getattr(transformers, model_class or "", None)
    if cls is None:
        raise ConfigError("--onnx exports transformers students (config.json naming a transformers "
                          f"class); this student's class is {model_class or 'not recorded'}")
    return export_onnx(cls.from_pretrained(folder), folder)


def quantization_request(config: str | Path, output_dir: Path | None, quantization: str) -> QuantizationRequest:
    """`--quantization`'s request: the search's own task (its data, teacher and settings) scores the
    graph on the validation split, with the search's latency threads and calibration batches."""
    from autodistill.study.run import load_search_config
    from autodistill.study.task import DistillationTask

    require_onnx()
    search = load_search_config(config)
    task = DistillationTask(search, output_dir=output_dir, quiet=True)
    calibration = task.calibration_batches() if quantization == "static_int8" else []
    return QuantizationRequest(quantization, task.validation_accuracy,
                               search.auto_distillation.evaluation.latency.threads, calibration)


def export_student(study: optuna.Study, trial: FrozenTrial, out: str | Path, *, selected_by: str,
                   command: str | None = None, onnx: bool = False,
                   quantization: QuantizationRequest | None = None) -> ExportedStudent:
    """Copy the trial's saved student to `out` (new or empty) with a tokenizer and README.md;
    `quantization` (which implies `onnx`) adds the int8 graph, checked (export/onnx.py)."""
    onnx = onnx or quantization is not None
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {str(out)!r} exists and is not empty; choose a new folder")
    saved = TrialRecord.from_trial(trial).student_path
    source = Path(saved or "")
    if not saved or not source.is_dir():
        raise ConfigError(f"trial {trial.number}'s student folder {str(source)!r} is missing; "
                          "was the search's output directory moved?")
    if same_or_inside(out, source):
        raise ConfigError(f"--out {str(out)!r} is inside trial {trial.number}'s student folder {str(source)!r}, "
                          "which it copies; choose a folder outside the search's output")
    if onnx:
        require_onnx()
    recorded = StudyRecord.of(study)
    writable_folder(out, key="--out")
    tokenizer_from: str | None = None
    check: OnnxCheck | None = None
    quantized: QuantizedCheck | None = None
    figures = TrialRecord.from_trial(trial)

    def assemble(tmp: Path) -> None:
        nonlocal tokenizer_from, check, quantized
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        tokenizer_from = _add_tokenizer(tmp, recorded.teacher_model)
        model_class = _model_class(tmp)
        check = _onnx(tmp, model_class) if onnx else None
        if quantization is not None:
            quantized = export_quantized(tmp, quantization, accuracy=figures.value(ACCURACY),
                                         eager_accuracy=figures.value(EAGER_ACCURACY))
        commands = [("search (its last run)", recorded.search_command)] if recorded.search_command else []
        if command:
            commands.append(("export", command))
        facts = CardFacts(
            study_name=study.study_name, selected_by=selected_by, teacher=teacher_reference(study) or {},
            teacher_model=recorded.teacher_model, data=recorded.data, model_class=model_class,
            commands=commands, files=sorted({p.name for p in tmp.iterdir()} | {MODEL_CARD}), onnx=check,
            quantized=quantized)
        (tmp / MODEL_CARD).write_text(model_card(trial, facts), encoding="utf-8")

    write_folder_atomically(out, assemble, replace=True)  # `out` is new or empty (checked above)
    return ExportedStudent(out, trial.number, tokenizer_from,
                           None if check is None else replace(check, path=out / check.path.name),
                           None if quantized is None else replace(quantized, path=out / quantized.path.name))
