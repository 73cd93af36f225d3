"""What a model's layers are called and what they output: `autodistill layers MODEL [STUDENT]`.

Which layers to map, and what they are called, is the question users of every distillation
tool ask first. This runs one forward pass of a sample input (batch 1, `sequence_length`
random token ids) with a forward hook on every module and lists each module's dotted path,
class and outputs by output index (the index a layer mapping names, e.g. `'1'` for BERT
self-attention's probabilities). Given a teacher and a student it also proposes the
flash-distillation section, ready to paste into a config:

- the blocks are the longest list of identical modules (`nn.ModuleList`, e.g.
  `bert.encoder.layer`), one student block per flash block;
- student block i learns from teacher block round((i + 1) * T / S) - 1 (evenly spread, the
  rule of `{t}` in templates and of `init_from_teacher`);
- within a block, its attention probabilities (an output of shape [1, heads, L, L]) with KL
  and its output hidden state (the last output of shape [1, L, hidden] in the block) with MSE;
  different widths get a linear matcher, different head counts a head-mean, automatically.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from autodistill.config.stages import teacher_layer_for
from autodistill.errors import ConfigError

Index = tuple[int | str, ...]


@dataclass(frozen=True)
class LayerOutput:
    path: str          # dotted module path ('' is the model itself)
    cls: str           # the module's class name
    index: Index       # where in the module's output the tensor is
    shape: tuple[int, ...]

    @property
    def index_text(self) -> str:
        return ".".join(str(i) for i in self.index)


def _tensors(value: Any, index: Index = ()) -> Iterator[tuple[Index, torch.Tensor]]:
    """Every tensor in a module output, with its output index (tuples by position, dicts by key)."""
    if isinstance(value, torch.Tensor):
        yield index, value
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from _tensors(item, (*index, i))
    elif isinstance(value, dict) or hasattr(value, "items"):
        for key, item in value.items():
            yield from _tensors(item, (*index, str(key)))


def sample_inputs(model: nn.Module, sequence_length: int) -> dict[str, torch.Tensor]:
    """Batch 1 of random token ids below the model's vocabulary size, no padding."""
    config = getattr(model, "config", None)
    vocab = getattr(config, "vocab_size", None)
    if not isinstance(vocab, int):
        raise ConfigError("autodistill layers reads Hugging Face models with a config.vocab_size; "
                          "for another model, register forward hooks with autodistill.capture")
    limit = getattr(config, "max_position_embeddings", None)
    if isinstance(limit, int) and sequence_length > limit:
        raise ConfigError(f"--sequence-length {sequence_length} is above the model's "
                          f"max_position_embeddings ({limit}); give a smaller one")
    ids = torch.randint(0, vocab, (1, sequence_length), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def layer_outputs(model: nn.Module, inputs: dict[str, torch.Tensor]) -> list[LayerOutput]:
    """Each module's output tensors in the order the modules finished their forward."""
    found: list[LayerOutput] = []
    handles = []

    def hook_for(path: str, module: nn.Module) -> Any:
        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            found.extend(LayerOutput(path, type(module).__name__, index, tuple(t.shape))
                         for index, t in _tensors(output))
        return hook

    for path, module in model.named_modules():
        handles.append(module.register_forward_hook(hook_for(path, module)))
    try:
        with torch.inference_mode():
            model.eval()(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    return found


def format_outputs(outputs: list[LayerOutput]) -> str:
    width = max((len(o.path or "(model)") for o in outputs), default=10)
    lines = [f"{'module':<{width}}  {'class':<28} {'index':<6} shape"]
    lines += [f"{o.path or '(model)':<{width}}  {o.cls:<28} {o.index_text or '-':<6} {list(o.shape)}"
              for o in outputs]
    return "\n".join(lines)


def blocks_of(model: nn.Module) -> str:
    """The dotted path of the model's longest list of identical modules (its layers)."""
    best, length = None, 0
    for path, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > length \
                and len({type(m) for m in module}) == 1:
            best, length = path, len(module)
    if best is None:
        raise ConfigError("no list of repeated layers (nn.ModuleList) found; name block_names and the "
                          "layer mappings yourself from the module list")
    return best


@dataclass(frozen=True)
class BlockFeatures:
    attention: str | None   # path inside the block of the module whose output holds the attention maps
    attention_index: Index
    hidden: str             # path inside the block of its output hidden state
    hidden_index: Index


def block_features(outputs: list[LayerOutput], block: str, *, sequence_length: int) -> BlockFeatures:
    """The attention maps and the output hidden state of one block, found by their shapes."""
    inside = [o for o in outputs if o.path == block or o.path.startswith(block + ".")]
    attention = next((o for o in inside if len(o.shape) == 4 and o.shape[0] == 1
                      and o.shape[2:] == (sequence_length, sequence_length)), None)
    hidden = [o for o in inside if len(o.shape) == 3 and o.shape[:2] == (1, sequence_length)]
    if not hidden:
        raise ConfigError(f"block {block} has no output of shape [1, {sequence_length}, hidden]")
    last = hidden[-1]

    def relative(path: str) -> str:
        return path[len(block) + 1:] if path != block else ""

    return BlockFeatures(relative(attention.path) if attention else None, attention.index if attention else (),
                         relative(last.path), last.index)


def _yaml_path(blocks: str, i: int, rest: str) -> str:
    return f"{blocks}.{i}" + (f".{rest}" if rest else "")


def _index(index: Index) -> str:
    return "'" + ".".join(str(i) for i in index) + "'"


def propose_mappings(teacher: nn.Module, student: nn.Module, *, sequence_length: int = 16,
                     train_steps: int = 200) -> str:
    """A `flash_distillation` section (YAML) mapping every student block to an evenly spread
    teacher block: attention maps with KL and output hidden states with MSE."""
    t_out = layer_outputs(teacher, sample_inputs(teacher, sequence_length))
    s_out = layer_outputs(student, sample_inputs(student, sequence_length))
    t_blocks, s_blocks = blocks_of(teacher), blocks_of(student)
    t_depth = len(cast(nn.ModuleList, teacher.get_submodule(t_blocks)))
    s_depth = len(cast(nn.ModuleList, student.get_submodule(s_blocks)))
    names, mappings, losses, weights = [], [], [], []
    for i in range(s_depth):
        t = teacher_layer_for(i, s_depth, t_depth)
        sf = block_features(s_out, f"{s_blocks}.{i}", sequence_length=sequence_length)
        tf = block_features(t_out, f"{t_blocks}.{t}", sequence_length=sequence_length)
        names.append(f"{s_blocks}.{i}")
        block, kinds = [], []
        if sf.attention is not None and tf.attention is not None:
            block.append(f"[{_yaml_path(s_blocks, i, sf.attention)}, {_index(sf.attention_index)}, "
                         f"{_yaml_path(t_blocks, t, tf.attention)}, {_index(tf.attention_index)}]")
            kinds.append("KL")
        s_hidden, t_hidden = _yaml_path(s_blocks, i, sf.hidden), _yaml_path(t_blocks, t, tf.hidden)
        if sf.hidden_index or tf.hidden_index:  # the four-item form, '' for "the output itself"
            s_hidden += f", {_index(sf.hidden_index)}"
            t_hidden += f", {_index(tf.hidden_index)}"
        block.append(f"[{s_hidden}, {t_hidden}]")
        kinds.append("MSE")
        mappings.append(block)
        losses.append(kinds)
        weights.append([round(1 / len(kinds), 4)] * len(kinds))
    lines = ["flash_distillation:",
             f"  block_names: [{', '.join(names)}]",
             "  layer_mappings_for_knowledge_transfer:"]
    for block in mappings:
        lines.append(f"    - - {block[0]}")
        lines += [f"      - {m}" for m in block[1:]]
    lines += [f"  loss_types: [{', '.join('[' + ', '.join(k) + ']' for k in losses)}]",
              f"  loss_weights: [{', '.join('[' + ', '.join(map(str, w)) + ']' for w in weights)}]",
              f"  train_steps: [{', '.join([str(train_steps)] * s_depth)}]"]
    if any(k[0] == "KL" for k in losses):
        lines.insert(0, "# attention maps need eager attention (attn_implementation: eager, the default here);\n"
                        "# a KL on them wants attention_probs_dropout_prob: 0.0 in the student")
    return "\n".join(lines)


__all__ = ["LayerOutput", "blocks_of", "format_outputs", "layer_outputs", "propose_mappings", "sample_inputs"]
