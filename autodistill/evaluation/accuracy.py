"""Classification accuracy of a model over a loader."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from autodistill.data.adaptor import DataAdaptor
from autodistill.evaluation.batches import labelled_logits


def accuracy(model: nn.Module, loader: Iterable[Any], *, adaptor: DataAdaptor | None = None,
             device: torch.device | str = "cpu", precision: str = "fp32") -> float:
    """Share of examples whose arg-max logit equals the label; forward passes in `precision`
    (autodistill.precision: fp32, bf16 or fp16 autocast)."""
    hits = total = 0
    for logits, labels in labelled_logits(model, loader, what="accuracy figures", adaptor=adaptor,
                                          device=device, precision=precision):
        hits += int((logits.argmax(-1) == labels).sum())
        total += labels.numel()
    return hits / total if total else float("nan")
