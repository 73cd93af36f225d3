"""Checks at the edge: a run that cannot succeed says so before anything is loaded, trained or written.

`autodistill search` and `autodistill distill` call these after the config is validated and
before the teacher's weights load, the teacher is fine-tuned, a study is touched or a file is
written. Each failure is one `ConfigError` (or the storage's `StorageError`) naming the key, the
value and the fix.

- `writable_folder`: the output folder is a folder (or can be made one) that takes files.
- `model_location` / `model_config`: a local model path exists and holds `config.json`.
- `check_device`: a device the config names exists on this machine.
- `check_precision` / `check_tensorboard`: the distillation's precision trains on its device here,
  and TensorBoard logging, where asked for, has its package.
- `check_sequence_length`: inputs of `data.max_length` tokens fit the model's position embeddings.
- `check_student_values`: every fixed value and every value of every search-space dimension passes
  the student builder's rules (its type, sizes >= 1, probabilities in [0, 1]; see
  `autodistill.models.builders.check_value`).
- `check_attn_implementation`: the attention implementation a model is loaded with exists here.
- `first_valid_architecture`: some architecture of the search space can be built.
- `check_mapping_paths`: every layer mapping and flash block names a module of the teacher and of
  a student (both built on the meta device: no weights, no memory).
- (a study of the same name: `autodistill.study.existing_study.check_existing_study`)
- `check_distill_output`: `distill`'s output folder is new, empty or its own earlier run, and no
  model folder it reads.
"""

from __future__ import annotations

import itertools
import logging
import re
import tempfile
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autodistill.errors import CaptureError, ConfigError, InvalidArchitecture

log = logging.getLogger(__name__)

# a hub name: `name` or `namespace/name`; anything else is a local path
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# grids larger than this are not enumerated (the search's own screening still applies)
MAX_COMBINATIONS = 100_000


def writable_folder(path: str | Path, *, key: str) -> None:
    """`path` is a folder that takes new files, or can be created as one; nothing is left behind."""
    folder = Path(path)
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    fix = f"give another {key}" + ("" if key.startswith("--") else f" (or --{key.replace('_', '-')})")
    if not existing.is_dir():
        raise ConfigError(f"{key} {str(folder)!r} is not a writable folder: {str(existing)!r} is a file; {fix}")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".autodistill-write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{key} {str(folder)!r} is not a writable folder: cannot create a file in "
                          f"{str(existing)!r} ({exc.strerror or exc}); fix its permissions or {fix}") from None


def check_distill_output(path: str | Path, *, reads: Mapping[str, str], own_file: str) -> None:
    """`distill`'s output folder is none of the model folders it reads (`reads`: key -> location),
    and is new, empty, or an earlier run of its own (it holds `own_file`)."""
    folder = Path(path)
    fix = "give a new or empty output_dir (or --output-dir)"
    for key, location in reads.items():
        source = Path(location).expanduser()
        if source.is_dir() and source.resolve() == folder.resolve():
            raise ConfigError(f"output_dir {str(folder)!r} is the {key} folder {location!r}, which `distill` "
                              f"reads: the student would overwrite its config.json and weights; {fix}")
    if folder.is_dir() and not (folder / own_file).is_file() and any(folder.iterdir()):
        raise ConfigError(f"output_dir {str(folder)!r} is not empty and holds no earlier `autodistill distill` "
                          f"run (no {own_file}): the student's files would be mixed with or overwrite "
                          f"what is there; {fix}")


def model_location(location: str, *, key: str, tokenizer: bool = False) -> None:
    """A local model folder exists and holds config.json (a tokenizer's folder need not); a hub name
    is left to `from_pretrained`."""
    path = Path(location).expanduser()
    what = "give a folder written by save_pretrained (config.json and weights) or a hub name"
    if path.is_dir():
        if not tokenizer and not (path / "config.json").is_file():
            raise ConfigError(f"{key}: folder {location!r} holds no config.json; {what}")
        return
    if path.exists():
        raise ConfigError(f"{key}: {location!r} is a file, not a model folder; {what}")
    if not _HUB_NAME.match(location):
        raise ConfigError(f"{key}: folder {location!r} does not exist (relative paths are relative to "
                          f"{Path.cwd()}); {what}")


def model_config(location: str, *, key: str) -> Any:
    """The model's transformers config (config.json only, no weights)."""
    from transformers import AutoConfig

    model_location(location, key=key)
    try:
        return AutoConfig.from_pretrained(location)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}: {location!r} is no local folder and cannot be fetched as a hub model "
                          f"(offline?): {_first_line(exc)}") from None


def load_tokenizer(location: str, *, key: str) -> Any:
    """`AutoTokenizer.from_pretrained(location)` with an error naming the key."""
    from transformers import AutoTokenizer

    model_location(location, key=key, tokenizer=True)
    other = ("remove student.tokenizer (the student then reads the teacher's)" if key == "student.tokenizer"
             else "set data.tokenizer")
    try:
        return AutoTokenizer.from_pretrained(location)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}: no tokenizer can be loaded from {location!r}: {_first_line(exc)}; save the "
                          f"tokenizer into the folder (tokenizer.save_pretrained) or {other}") from None


def check_student_tokenizer(location: str, *, strategy: str) -> None:
    """A search's `student.tokenizer` loads, and its strategy can build students for it: a supernet
    slices its students out of the teacher, embeddings included, so it has the teacher's vocabulary."""
    if strategy == "supernet":
        raise ConfigError("student.tokenizer: search.strategy supernet slices every student out of the "
                          "teacher, whose embeddings are for the teacher's tokens; set search.strategy: "
                          "per_trial, or remove student.tokenizer")
    load_tokenizer(location, key="student.tokenizer")


def check_student_vocabulary(student_config: Any, tokenizer: Any, *, key: str) -> None:
    """A student loaded as saved has an embedding row for every token of its own tokenizer."""
    size = getattr(student_config, "vocab_size", None)
    if isinstance(size, int) and size < len(tokenizer):
        raise ConfigError(f"student.tokenizer has {len(tokenizer):,} tokens but {key}'s vocab_size is {size:,}; "
                          "give the tokenizer the student was trained with, or a student built for it")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _values(values: Sequence[Any]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def check_device(name: str, *, key: str) -> None:
    """`name` ('auto', 'cpu', 'cuda:1', 'mps') is a device of this machine."""
    if name == "auto":
        return
    from autodistill.evaluation.latency import resolve_latency_device

    resolve_latency_device(name, key=key)


def check_precision(section: Any, *, key: str) -> None:
    """The precision of `section` (a DistillationSection, at `key`) trains on its device here:
    bf16 needs bf16 hardware unless precision_force, fp16 a GPU (autodistill/precision.py)."""
    from autodistill.distill.distiller import resolve_device
    from autodistill.precision import precision_refusal

    try:
        device = resolve_device(section.device)
    except RuntimeError:  # an unknown device name: check_device says so
        return
    refusal = precision_refusal(section.precision, device, force=section.precision_force)
    if refusal is not None:
        raise ConfigError(f"{key}.precision: {refusal}")


def check_tensorboard(section: Any, *, key: str) -> None:
    """TensorBoard logging, where `section` (a DistillationSection, at `key`) asks for it, can run here."""
    from autodistill.distill.tb_logging import tensorboard_missing

    wanted = section.logging is not None and section.logging.tensorboard is not False
    if wanted and (missing := tensorboard_missing()) is not None:
        raise ConfigError(f"{key}.logging.tensorboard: {missing}")


def check_sequence_length(config: Any, length: int | None, *, key: str, whose: str) -> None:
    """Inputs of `length` tokens fit the `max_position_embeddings` of `config` (`whose` model)."""
    limit = getattr(config, "max_position_embeddings", None)
    if length is not None and isinstance(limit, int) and length > limit:
        raise ConfigError(f"{key} is {length} but {whose} max_position_embeddings is {limit}: longer "
                          f"inputs have no position embedding; set {key} to {limit} or less")


def check_student_values(space: Any, base_config: Any, fixed: Mapping[str, Any], *, max_length: int,
                         key: str = "auto_distillation.search.search_space",
                         fixed_key: str = "student.fixed") -> None:
    """Every value of `fixed` and of every dimension of `space` (a SearchSpace; None: no space)
    passes the builder's rules for its key (a range by its bounds), and a searched or fixed
    `max_position_embeddings` holds `max_length` tokens (the longest input: data.max_length, or
    evaluation.latency.sequence_length when longer)."""
    from autodistill.models.builders import check_value

    checks = [(f"{fixed_key}.{name}", name, "", value) for name, value in fixed.items()]
    for dimension in space.dimensions if space is not None else ():
        bounds = (("", c) for c in dimension.choices) if hasattr(dimension, "choices") else (
            ("low: ", dimension.low), ("high: ", dimension.high))
        checks += [(f"{key}.{dimension.name}", dimension.name, which, value) for which, value in bounds]
    for where, name, which, value in checks:
        try:
            check_value(base_config, name, value)
        except InvalidArchitecture as exc:
            raise ConfigError(f"{where}: {which}{exc}") from None
        if name == "max_position_embeddings" and isinstance(value, int) and value < max_length:
            raise ConfigError(f"{where}: {which}max_position_embeddings {value} is below the inputs' length "
                              f"{max_length} (data.max_length, or evaluation.latency.sequence_length when "
                              f"longer): longer inputs have no position embedding; use at least {max_length}")


def first_valid_architecture(space: Any, base_config: Any, fixed: Mapping[str, Any], *,
                             key: str = "auto_distillation.search.search_space") -> dict[str, Any] | None:
    """An architecture of `space` (a SearchSpace) that `check_architecture` accepts; a ConfigError
    naming the combinations when none is; None when the space is too large or continuous to tell."""
    from autodistill.models.builders import ARCHITECTURE_KEYS, check_architecture, student_config

    relevant = [d for d in space.dimensions if d.name in ARCHITECTURE_KEYS]
    total = 1
    for dimension in relevant:
        count = dimension.count()
        if count is None:  # a continuous range: no grid to enumerate
            return None
        total *= count
        if total > MAX_COMBINATIONS:
            return None
    grids = [d.values() for d in relevant]
    others = {d.name: d.choices[0] if hasattr(d, "choices") else d.low
              for d in space.dimensions if d.name not in ARCHITECTURE_KEYS}
    names = [d.name for d in relevant]
    # unknown keys are errors here, before anything is loaded
    config = student_config(base_config, {**fixed, **others, **{n: g[0] for n, g in zip(names, grids)}})
    current = {k: getattr(config, k, None) for k in ARCHITECTURE_KEYS}
    first_reason = None
    for combination in itertools.product(*grids):
        values = dict(zip(names, combination))
        try:
            check_architecture(types.SimpleNamespace(**{**current, **values}))
        except InvalidArchitecture as exc:
            first_reason = first_reason or str(exc)
            continue
        return {**others, **values}
    described = [f"{n} {_values(g)}" for n, g in zip(names, grids)]
    for name in ("hidden_size", "num_attention_heads"):
        if name not in names and current.get(name) is not None:
            where = "student.fixed" if name in fixed else "the teacher's config"
            described.append(f"{name} {current[name]} ({where})")
    which = f"none of the {total} combinations" if total > 1 else "the one combination"
    raise ConfigError(
        f"{key} has no valid architecture: {which} of {' and '.join(described)} can be built "
        f"({first_reason}); change the choices so that at least one is valid (e.g. hidden sizes "
        "divisible by the head counts)")


def meta_model(model_cls: str, config: Any) -> Any:
    """`model_cls` for `config` on the meta device: its module tree without weights or memory;
    None when it cannot be built so (the run itself then reports what is wrong)."""
    import torch

    from autodistill.models.classes import model_class

    cls = model_class(model_cls)  # an unknown class name is a ConfigError now
    try:
        with torch.device("meta"):
            return cls.from_config(config)
    except Exception as exc:  # noqa: BLE001 (a check must never stop a run that would work)
        log.debug("no meta-device %s for the preflight checks: %s", model_cls, exc)
        return None


def check_attn_implementation(model_cls: str, config: Any, name: str | None, *, key: str) -> None:
    """`name` is an attention implementation `model_cls` takes on this machine: transformers checks it
    as it builds the model, here on the meta device (the teacher's own load comes after its fine-tune)."""
    if name is None:
        return
    import torch

    from autodistill.models.classes import model_class

    cls = model_class(model_cls)
    try:
        with torch.device("meta"):
            cls.from_config(config, attn_implementation=name)
    except (ValueError, ImportError) as exc:  # its message lists the implementations it takes
        raise ConfigError(f"{key}: {name!r} cannot be used: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 (a check must never stop a run that would work)
        log.debug("attn_implementation %r not checked on the meta device: %s", name, exc)


def check_mapping_paths(section: Any, *, teacher: Any | None, student: Any | None,
                        prefix: str = "auto_distillation") -> None:
    """Every mapping's module exists in the teacher and in `student` (None: the student side is not
    checked), and every flash block names student parameters; `section` is a DistillationSection."""
    from autodistill.capture import resolve_module
    from autodistill.distill.freezing import select_parameters

    if teacher is None:
        return

    def depth(model: Any) -> int | None:
        return getattr(getattr(model, "config", None), "num_hidden_layers", None)

    plan = section.plan(student_layers=depth(student) if student is not None else depth(teacher),
                        teacher_layers=depth(teacher))
    for stage in plan.stages:
        where = f"{prefix}.{'flash_distillation' if stage.kind == 'flash' else 'regular_distillation'}"
        try:
            for mapping in stage.mappings:
                if student is not None:
                    resolve_module(student, mapping.student, role="student")
                resolve_module(teacher, mapping.teacher, role="teacher")
        except CaptureError as exc:
            raise ConfigError(f"{where}.layer_mappings_for_knowledge_transfer: {exc}") from None
        if student is not None and stage.trainable is not None:
            try:
                select_parameters(student, stage.trainable)
            except CaptureError as exc:
                names = "block_names" if stage.kind == "flash" else "trainable"
                raise ConfigError(f"{where}.{names}: {exc}") from None
