"""Masked-LM figures of a model over a loader: masked-token accuracy and perplexity.

Only the tokens whose label is not -100 (the masked ones, data/masked_lm.py) count: accuracy is
the share of them whose arg-max logit is the original token, perplexity exp of their mean
cross-entropy. The model gets no labels, so its own loss is not computed twice, and its
vocabulary projection runs only at the masked tokens (losses/scored_positions.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autodistill.data.adaptor import DataAdaptor
from autodistill.errors import MappingError
from autodistill.evaluation.batches import labelled_logits
from autodistill.losses.scored_positions import at_positions, scored_positions


def masked_lm_figures(model: nn.Module, loader: Iterable[Any], *, adaptor: DataAdaptor | None = None,
                      device: torch.device | str = "cpu", precision: str = "fp32") -> dict[str, float]:
    """{"accuracy": masked-token accuracy, "perplexity": ..., "masked_tokens": how many counted}."""
    hits = total = 0
    nll = 0.0
    for logits, labels in labelled_logits(model, loader, what="masked-LM figures", adaptor=adaptor,
                                          device=device, precision=precision, scored_only=True):
        kept = scored_positions(None, labels)
        scored = logits.dim() == 2 and kept is not None and logits.shape[0] == int(kept.sum())
        if kept is None or not (scored or logits.shape[:-1] == labels.shape):
            raise MappingError(f"masked-LM figures need logits per token, shape {tuple(labels.shape)} "
                               f"+ (vocabulary,), and per-token labels (-100 where a token is not "
                               f"predicted), but the model returned {tuple(logits.shape)}; use "
                               "an AutoModelForMaskedLM model (teacher.model_cls)")
        chosen, targets = at_positions(logits, kept).float(), labels[kept]
        hits += int((chosen.argmax(-1) == targets).sum())
        nll += float(F.cross_entropy(chosen, targets, reduction="sum"))
        total += int(targets.numel())
    if not total:
        return {"accuracy": float("nan"), "perplexity": float("nan"), "masked_tokens": 0}
    return {"accuracy": hits / total, "perplexity": math.exp(min(nll / total, 700.0)),
            "masked_tokens": total}
