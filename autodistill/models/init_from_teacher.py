"""Initialise a student from its teacher's weights instead of from scratch.

A student built from the teacher's config with fewer layers or narrower widths starts,
by default, from random weights. Starting it from the teacher's instead makes the short
distillation budgets of a search go much further: on the built-in example (BBC News,
MiniLM-L6 teacher at 0.970 test accuracy) a 192x2 student reached 0.956 after 6 KD epochs
from teacher-init against 0.904 from random init (see ENVIRONMENT-NOTES.md, "What students
can reach"). Much narrower students can lose from it (128x2: 0.838 vs 0.916 at 6 epochs),
which is why it is an option, not a rule.

What is copied, for BERT-family models (BertModel, BertFor*, and any model with the same
module layout, found by module paths rather than by class):

- the embeddings (`<base>.embeddings.{word,position,token_type}_embeddings`, `LayerNorm`);
  a student with a tokenizer of its own (`shared_vocabulary=False`, `student.tokenizer`) keeps
  its randomly initialised word embeddings: its token ids name other pieces than the teacher's
  rows (it is reported under `skipped`); positions, token types and the rest are copied;
- for each student layer i, teacher layer `layer_map[i]`: attention query/key/value and
  output, the intermediate and output dense layers and both LayerNorms. By default the
  teacher layers are spread evenly, student layer i <- teacher layer
  round((i + 1) * T / S) - 1 (`autodistill.config.stages.teacher_layer_for`, the rule the
  flash templates use for their mappings);
- the pooler, and the task head outside the base model when it fits: the classifier
  (`classifier.*`) when the student has as many labels as the teacher (otherwise it keeps its
  fresh weights); the masked-LM head (`cls.predictions.transform.*`, and the output bias
  `cls.predictions.bias` and an untied decoder, whose entries are token ids, so only with a
  shared vocabulary; a tied decoder is the word embeddings); BERT pre-training's next-sentence head
  (`cls.seq_relationship.*`). A masked-LM student of a teacher whose head was adapted
  (`teacher.fine_tune`) thus starts with that head instead of a random one.

Where the student is narrower, each dimension takes the teacher's first entries: the first
h hidden dims (LayerNorms included), the first intermediate units, the first rows of the
vocabulary and position tables. Attention is sliced per head: the student's heads are the
teacher's first `student_heads` heads and, within each, the first `student_head_dim` dims,
so a student with smaller heads does not receive the rows of whole teacher heads mixed
together. A student with larger heads than the teacher's (fewer, wider heads) takes the
first rows, i.e. consecutive teacher heads merged into each of its heads. A student dimension
larger than the teacher's cannot be filled and raises
ConfigError. Student parameters outside this layout are left alone and reported.

Weights are copied only between models of one type (`config.model_type`): a MobileBERT student
of a BERT teacher has modules of the same names (`encoder.layer.<i>.attention.self.query`)
that compute other things (its attention reads the bottleneck), so slices of the teacher's
tensors would not be a start. Such a student keeps its random weights, all of them reported
as `skipped`, and one line is logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from transformers import PretrainedConfig

from autodistill.config.stages import teacher_layer_for
from autodistill.errors import ConfigError

__all__ = ["InitReport", "init_from_teacher"]

logger = logging.getLogger(__name__)

_FIX = "use a student no wider than the teacher, or set init_from_teacher: false"

# names relative to the base model (the module that holds `embeddings`)
_SHARED = frozenset({
    "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias",
    "pooler.dense.weight",
    "pooler.dense.bias",
})
_WORDS = "embeddings.word_embeddings.weight"  # rows indexed by token id: the tokenizer's own
_LAYER = re.compile(r"encoder\.layer\.(\d+)\.(.+)")
# per-layer parameter -> the axis laid out as [heads, head_dim] (None: plain first-n slicing)
_LAYER_PARAMS: dict[str, int | None] = {
    **{f"attention.self.{p}.{k}": 0 for p in ("query", "key", "value") for k in ("weight", "bias")},
    "attention.output.dense.weight": 1,
    "attention.output.dense.bias": None,
    "attention.output.LayerNorm.weight": None,
    "attention.output.LayerNorm.bias": None,
    "intermediate.dense.weight": None,
    "intermediate.dense.bias": None,
    "output.dense.weight": None,
    "output.dense.bias": None,
    "output.LayerNorm.weight": None,
    "output.LayerNorm.bias": None,
}
_CLASSIFIER = "classifier."
_MLM_HEAD = "cls.predictions."
# rows or entries per token id (the tokenizer's own, like _WORDS): the output bias, and the
# decoder when it is not tied to the word embeddings
_MLM_BY_TOKEN = ("cls.predictions.bias", "cls.predictions.decoder.")
_NSP_HEAD = "cls.seq_relationship."


@dataclass(frozen=True)
class InitReport:
    """What `init_from_teacher` did, by student parameter name.

    `copied` lists every parameter filled from the teacher; `sliced` the subset that took
    only part of a larger teacher tensor; `skipped` the parameters left with their fresh
    weights; `layer_map[i]` the teacher layer that student layer i came from.
    """

    copied: tuple[str, ...]
    sliced: tuple[str, ...]
    skipped: tuple[str, ...]
    layer_map: tuple[int, ...]


@dataclass(frozen=True)
class _Heads:
    heads: int
    head_dim: int


def _join(base: str, rest: str) -> str:
    return f"{base}.{rest}" if base else rest


def _base_prefix(model: nn.Module, role: str) -> str:
    """The path of the module holding `embeddings` and `encoder.layer` ('' for BertModel)."""
    found = []
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "embeddings" and isinstance(getattr(module, "word_embeddings", None), nn.Embedding):
            base = name[: -len("embeddings")].rstrip(".")
            try:
                model.get_submodule(_join(base, "encoder.layer"))
            except AttributeError:
                continue
            found.append(base)
    if not found:
        raise ConfigError(
            f"init_from_teacher supports BERT-family layouts (<base>.embeddings.word_embeddings and "
            f"<base>.encoder.layer.<i>), but the {role} {type(model).__name__} has none; "
            "set init_from_teacher: false for this model")
    return min(found, key=len)


def _heads(model: nn.Module, base: str, layer: int) -> _Heads:
    attention = model.get_submodule(_join(base, f"encoder.layer.{layer}.attention.self"))
    heads = getattr(attention, "num_attention_heads", None)
    if heads is None:
        heads = cast(PretrainedConfig, model.config).num_attention_heads
    head_dim = getattr(attention, "attention_head_size", None)
    if head_dim is None:
        head_dim = cast(nn.Linear, attention.get_submodule("query")).out_features // heads
    return _Heads(int(heads), int(head_dim))


def _model_type(model: nn.Module) -> str | None:
    return getattr(getattr(model, "config", None), "model_type", None)


def _num_labels(model: nn.Module) -> int | None:
    return getattr(getattr(model, "config", None), "num_labels", None)


def _default_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    return [teacher_layer_for(i, student_layers, teacher_layers) for i in range(student_layers)]


def _check_layer_map(layer_map: Sequence[int], student_layers: int, teacher_layers: int) -> tuple[int, ...]:
    layer_map = tuple(layer_map)
    if len(layer_map) != student_layers:
        raise ConfigError(
            f"layer_map must name one teacher layer per student layer ({student_layers}), "
            f"got {len(layer_map)}: {list(layer_map)}")
    bad = [t for t in layer_map if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < teacher_layers]
    if bad:
        raise ConfigError(
            f"layer_map entries must be teacher layer indices in [0, {teacher_layers - 1}], "
            f"got {bad} in {list(layer_map)}")
    return layer_map


def _indices(name: str, student: torch.Tensor, source: str, teacher: torch.Tensor,
             head_axis: int | None, heads: tuple[_Heads, _Heads] | None) -> list[torch.Tensor]:
    """Per axis, the teacher indices that fill the student tensor; ConfigError if it cannot."""
    s_shape, t_shape = tuple(student.shape), tuple(teacher.shape)
    where = (f"student parameter {name!r} of shape {s_shape} from teacher parameter "
             f"{source!r} of shape {t_shape}")
    if len(s_shape) != len(t_shape):
        raise ConfigError(f"init_from_teacher cannot fill {where}: they differ in rank; {_FIX}")
    indices = []
    for axis, (s_n, t_n) in enumerate(zip(s_shape, t_shape)):
        if axis == head_axis and heads is not None:
            s_heads, t_heads = heads
            if s_heads.heads * s_heads.head_dim != s_n or t_heads.heads * t_heads.head_dim != t_n:
                raise ConfigError(
                    f"init_from_teacher cannot fill {where}: axis {axis} is not heads x head size "
                    f"(student {s_heads.heads}x{s_heads.head_dim}, teacher {t_heads.heads}x{t_heads.head_dim}); "
                    "set init_from_teacher: false for this model")
            if s_heads.heads <= t_heads.heads and s_heads.head_dim <= t_heads.head_dim:
                # head h, dim d of the student <- head h, dim d of the teacher
                rows = torch.arange(s_heads.heads)[:, None] * t_heads.head_dim + torch.arange(s_heads.head_dim)
                indices.append(rows.reshape(-1))
                continue
            if s_n > t_n:
                raise ConfigError(
                    f"init_from_teacher cannot fill {where}: the student's {s_heads.heads} heads of "
                    f"size {s_heads.head_dim} are wider than the teacher's {t_n} dims; {_FIX}")
            # larger (or more) heads than the teacher's: the first s_n rows, i.e. consecutive
            # teacher heads merged into one student head (or split across several)
            indices.append(torch.arange(s_n))
        else:
            if s_n > t_n:
                raise ConfigError(
                    f"init_from_teacher cannot fill {where}: the student is larger along axis {axis} "
                    f"({s_n} > {t_n}); {_FIX}")
            indices.append(torch.arange(s_n))
    return indices


def _source(rel: str, t_base: str, layer_map: tuple[int, ...]) -> tuple[str, int | None, int | None] | None:
    """For a student name relative to its base: (teacher name, head axis, student layer), or None."""
    if rel in _SHARED:
        return _join(t_base, rel), None, None
    match = _LAYER.fullmatch(rel)
    if match and match.group(2) in _LAYER_PARAMS:
        layer = int(match.group(1))
        teacher_name = _join(t_base, f"encoder.layer.{layer_map[layer]}.{match.group(2)}")
        return teacher_name, _LAYER_PARAMS[match.group(2)], layer
    return None


def _head_fits(name: str, labels_match: bool, shared_vocabulary: bool) -> bool:
    """Whether the task-head parameter `name` (outside the base model) can take the teacher's."""
    if name.startswith(_CLASSIFIER):
        return labels_match
    if name.startswith(_MLM_BY_TOKEN):
        return shared_vocabulary
    return name.startswith((_MLM_HEAD, _NSP_HEAD))


def init_from_teacher(student: nn.Module, teacher: nn.Module, *,
                      layer_map: Sequence[int] | None = None, shared_vocabulary: bool = True) -> InitReport:
    """Fill `student` in place from `teacher`'s weights (see the module docstring).

    `layer_map[i]` is the teacher layer copied into student layer i; by default the teacher's
    layers spread evenly. `shared_vocabulary=False` (the student's tokenizer is not the
    teacher's) leaves the word embeddings fresh. Every check runs before any copy, so on
    ConfigError the student is unchanged. Teacher tensors are copied, never shared.
    """
    s_type, t_type = _model_type(student), _model_type(teacher)
    if s_type != t_type and None not in (s_type, t_type):
        logger.info("init_from_teacher: the student is %s, the teacher %s: weights are copied only within one "
                    "model type, so the student keeps its random weights", s_type, t_type)
        return InitReport(copied=(), sliced=(), skipped=tuple(name for name, _ in student.named_parameters()),
                          layer_map=())
    s_base, t_base = _base_prefix(student, "student"), _base_prefix(teacher, "teacher")
    s_layers = len(cast(nn.ModuleList, student.get_submodule(_join(s_base, "encoder.layer"))))
    t_layers = len(cast(nn.ModuleList, teacher.get_submodule(_join(t_base, "encoder.layer"))))
    layer_map = _check_layer_map(
        _default_layer_map(s_layers, t_layers) if layer_map is None else layer_map, s_layers, t_layers)
    teacher_params: dict[str, torch.Tensor] = dict(teacher.named_parameters())
    labels = _num_labels(student)
    labels_match = labels is not None and labels == _num_labels(teacher)
    s_prefix = f"{s_base}." if s_base else ""

    plan: list[tuple[str, nn.Parameter, torch.Tensor, list[torch.Tensor]]] = []
    skipped: list[str] = []
    for name, param in student.named_parameters():
        found: tuple[str, int | None, int | None] | None  # (teacher parameter, head axis, student layer)
        if s_prefix and not name.startswith(s_prefix):
            # outside the base model: only the known task heads, where they fit
            found = (name, None, None) if _head_fits(name, labels_match, shared_vocabulary) else None
        else:
            rel = name[len(s_prefix):]
            found = None if rel == _WORDS and not shared_vocabulary else _source(rel, t_base, layer_map)
        if found is None or found[0] not in teacher_params:
            skipped.append(name)
            continue
        source, head_axis, layer = found
        heads = None
        if head_axis is not None and layer is not None:
            heads = (_heads(student, s_base, layer), _heads(teacher, t_base, layer_map[layer]))
        t_param = teacher_params[source]
        plan.append((name, param, t_param, _indices(name, param, source, t_param, head_axis, heads)))

    copied, sliced = [], []
    with torch.no_grad():
        for name, param, t_param, indices in plan:
            value = t_param.detach()
            for axis, index in enumerate(indices):
                value = value.index_select(axis, index.to(value.device))  # always a new tensor
            param.copy_(value)
            copied.append(name)
            if tuple(param.shape) != tuple(t_param.shape):
                sliced.append(name)
    return InitReport(copied=tuple(copied), sliced=tuple(sliced), skipped=tuple(skipped),
                      layer_map=layer_map)
