"""Padding masks for features: which positions (and elements) of a feature are real tokens.

A position mask is the attention mask `(batch, seq_len)` laid over a feature's
shape. Recognised layouts:
- `(batch, seq_len, ...)`: hidden states, per-token logits;
- `(batch, heads, seq_len, seq_len)`: attention maps (queries and keys);
- anything else (`(batch, classes)`, images): no mask applies.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100  # the label of a token no loss or metric counts (transformers' ignore_index)


def _is_attention_map(shape: torch.Size, seq_len: int) -> bool:
    return len(shape) == 4 and shape[2] == seq_len and shape[3] == seq_len


def position_mask(mask: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
    """A bool mask over `shape[:-1]` (the positions a per-position loss averages over)."""
    if mask is None or len(shape) < 3 or mask.shape[0] != shape[0]:
        return None
    seq_len = mask.shape[1]
    valid = mask.bool()
    if _is_attention_map(shape, seq_len):
        return valid[:, None, :].expand(shape[0], shape[1], seq_len)
    if shape[1] == seq_len:
        view = valid.view(shape[0], seq_len, *([1] * (len(shape) - 3)))
        return view.expand(*shape[:-1])
    return None


def element_mask(mask: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
    """A bool mask broadcastable to `shape`; attention maps also drop padded keys."""
    positions = position_mask(mask, shape)
    if positions is None:
        return None
    assert mask is not None
    if _is_attention_map(shape, mask.shape[1]):
        return positions[..., None] & mask.bool()[:, None, None, :]
    return positions[..., None]


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of `values` over the elements where `mask` (broadcastable) is true."""
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def logit_positions(mask: torch.Tensor | None, labels: torch.Tensor | None,
                    shape: torch.Size) -> torch.Tensor | None:
    """The positions logit KD averages over, as a `(batch, seq_len)` mask: the real tokens, and
    with per-token labels (masked LM, token labels) only those whose label is not IGNORE_INDEX;
    None for per-example logits `(batch, classes)`."""
    if len(shape) < 3:
        return None
    if labels is not None and tuple(labels.shape) == tuple(shape[:2]):
        kept = labels.ne(IGNORE_INDEX)
        return kept if mask is None else kept & mask.bool()
    return mask if position_mask(mask, shape) is not None else None
