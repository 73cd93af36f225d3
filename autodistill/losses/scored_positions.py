"""The vocabulary projection only where a loss or metric reads it: at the scored positions.

A masked-LM model projects every token's hidden state onto the vocabulary (BERT's decoder,
30522 x hidden: about half the FLOPs of a MiniLM-L6 forward), yet masked-LM losses and metrics
read only the masked tokens (15%); projecting only those cuts a MiniLM-L6 forward at batch 32 x
48 tokens to 0.78 of its CPU time (`scripts/bench_mlm_teacher.py --projection-cost 2`).

Inside `output_layer_at(models, positions)` each model's output embeddings
(`get_output_embeddings()`, the decoder) take only the hidden states at `positions` (a bool
`(batch, seq_len)` mask, `scored_positions`): its logits are `(positions.sum(), vocabulary)`,
row i the i-th scored position in row-major order, equal to `full[positions]`.
A head that does not call its decoder as a module (MobileBERT's) still returns every token's
logits; `at_positions` takes the same rows from those, so a loss reads both alike.
Models without output embeddings (classifiers) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import nn

from autodistill.losses.masking import IGNORE_INDEX


def scored_positions(mask: torch.Tensor | None, labels: torch.Tensor | None) -> torch.Tensor | None:
    """With per-token labels (integer, `(batch, seq_len)` as the attention mask; masked LM, token
    labels): the real tokens whose label is not IGNORE_INDEX, as a bool mask; None otherwise."""
    if labels is None or labels.dim() != 2 or labels.is_floating_point():
        return None
    if mask is not None and labels.shape != mask.shape:
        return None
    kept = labels.ne(IGNORE_INDEX)
    return kept if mask is None else kept & mask.bool()


def at_positions(logits: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The logits at `positions`, `(positions.sum(), vocabulary)`, whether the model computed
    them only there (2-D) or at every token (3-D)."""
    return logits if logits.dim() == 2 else logits[positions]


def output_embeddings(model: nn.Module) -> nn.Module | None:
    """`model`'s output embeddings (its vocabulary projection), if any."""
    get = getattr(model, "get_output_embeddings", None)
    layer = get() if callable(get) else None
    return layer if isinstance(layer, nn.Module) else None


def output_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The name and module of `model`'s output embeddings, if any (walks the modules: set-up only)."""
    layer = output_embeddings(model)
    if layer is None:
        return None
    return next(((name, module) for name, module in model.named_modules() if module is layer), None)


def reads_output_layer(model: nn.Module, paths: Sequence[str]) -> bool:
    """True when a captured feature path is the output embeddings or holds them (its shape would change)."""
    found = output_layer(model)
    return found is not None and any(p == "" or found[0] == p or found[0].startswith(p + ".") for p in paths)


def _gather(positions: torch.Tensor, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    hidden = args[0]
    if not isinstance(hidden, torch.Tensor) or hidden.shape[:2] != positions.shape:
        return None
    return (hidden[positions.to(hidden.device)], *args[1:])


@contextmanager
def output_layer_at(models: Sequence[nn.Module], positions: torch.Tensor | None) -> Iterator[None]:
    """Within the block, `models`' output embeddings project only the hidden states at `positions`
    (nothing changes when `positions` is None)."""
    handles = []
    if positions is not None:
        for model in models:  # per step: the module itself, no walk over the model's modules
            layer = output_embeddings(model)
            if layer is not None:
                handles.append(layer.register_forward_pre_hook(partial(_gather, positions)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
