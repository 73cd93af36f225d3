"""What a study is bound to: its data, its teacher and how it measures students, as fingerprints
computed before anything loads.

    binding = study_binding(config)    # {"data": {...}, "teacher": {...}, "auto_distillation.evaluation": {...}}
    binding_differences(recorded, binding)   # ["data.train_file (its content)", ...]

A study's trials are comparable only when they were distilled from one teacher, scored on one
dataset and measured one way (the latency benchmark's batch, sequence length, threads and
device; the runtime and quantization students are scored and timed as): the search records
`binding` in the study (user attribute `binding`, trials.py) and preflight refuses a run whose
binding differs (study/existing_study.py). Files are fingerprinted by their bytes and model
folders by their config and weight files, so a moved folder is the same teacher and an edited
CSV is other data. A file that cannot be read is left out (not compared): the data loader
names it before anything is trained.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from autodistill.config.schema import DataSection, EvaluationSection, SearchRunConfig, TeacherSection

CHUNK = 1 << 20
# the files of a saved model that make it that model (tokenizer files belong to the data side)
MODEL_FILES = ("config.json", "*.safetensors", "*.bin")


def file_digest(path: str | Path) -> str | None:
    """The sha256 of a file's bytes (first 16 hex digits); None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()[:16]


def model_digest(location: str) -> str:
    """A local model folder's config and weight files, by name and content; a hub name as itself."""
    folder = Path(location).expanduser()
    if not folder.is_dir():
        return f"hub:{location}"
    digest = hashlib.sha256()
    files = sorted({p for pattern in MODEL_FILES for p in folder.glob(pattern) if p.is_file()})
    for path in files:
        digest.update(f"{path.name}:{file_digest(path)}\n".encode())
    return digest.hexdigest()[:16]


def data_binding(section: DataSection) -> dict[str, Any]:
    """The examples a search trains and scores students on: the files' contents (or the corpus
    and its split) and the settings that choose, label, truncate or window them."""
    if section.corpus is not None:
        source: dict[str, Any] = {"corpus": section.corpus, "fractions": list(section.fractions),
                                  "split_seed": section.split_seed}
    else:
        source = {"text_column": section.text_column, "label_column": section.label_column}
        for key, path in (("train_file", section.train_file), ("validation_file", section.validation_file),
                          ("test_file", section.test_file)):
            digest = None if path is None else file_digest(path)
            if path is None or digest is not None:  # an unreadable file: not compared
                source[key] = digest
        if section.limit is not None:
            source["split_seed"] = section.split_seed  # it draws the limited sample
    return {**source, "label_names": section.label_names, "limit": section.limit,
            "max_length": section.max_length, "training_windows": section.training_windows}


def teacher_binding(section: TeacherSection) -> dict[str, Any]:
    """The teacher students are distilled from: its files, class, and fine-tuning (if any)."""
    return {"model": model_digest(section.location()), "model_cls": section.model_cls,
            "num_labels": section.num_labels,
            "fine_tune": None if section.fine_tune is None else section.fine_tune.key_settings()}


def evaluation_binding(section: EvaluationSection) -> dict[str, Any]:
    """How a search measures students: the latency benchmark's shape, threads and device, and the
    deployment they are scored and timed as (warm-up and repeats change only the noise)."""
    latency = section.latency
    return {"latency.batch_size": latency.batch_size, "latency.sequence_length": latency.sequence_length,
            "latency.threads": latency.threads, "latency.device": latency.device,
            **{f"deployment.{key}": value for key, value in section.deployment.model_dump().items()}}


EVALUATION = "auto_distillation.evaluation"
SECTIONS = ("data", "teacher", EVALUATION)


def study_binding(config: SearchRunConfig) -> dict[str, dict[str, Any]]:
    return {"data": data_binding(config.data), "teacher": teacher_binding(config.teacher),
            EVALUATION: evaluation_binding(config.auto_distillation.evaluation)}


def binding_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`section.key (how)` for every entry that differs; an entry a side lacks is not compared
    (an unreadable file, or a key bound after the study was recorded)."""
    found = []
    for section in SECTIONS:
        old, new = recorded.get(section) or {}, current.get(section) or {}
        for key in sorted(old.keys() & new.keys()):
            if old[key] == new[key]:
                continue
            if key.endswith("_file") and None in (old[key], new[key]):
                how = f"{'given' if new[key] else 'not given'} here, {'given' if old[key] else 'not'} in the study"
            elif key.endswith("_file") or key == "model":
                how = "other content"
            else:
                how = f"{new[key]!r} here, {old[key]!r} in the study"
            found.append(f"{section}.{key} ({how})")
    return found
