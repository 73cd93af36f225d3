"""Regression figures of a model over a loader: mean squared error and Pearson correlation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from autodistill.data.adaptor import DataAdaptor
from autodistill.errors import MappingError
from autodistill.evaluation.batches import labelled_logits


def regression_figures(model: nn.Module, loader: Iterable[Any], *, adaptor: DataAdaptor | None = None,
                       device: torch.device | str = "cpu") -> dict[str, float]:
    """{"mse": ..., "pearson": ...} of the model's one output per example against the targets
    (Pearson is NaN when either side is constant)."""
    predictions, targets = [], []
    for logits, labels in labelled_logits(model, loader, what="regression figures", adaptor=adaptor,
                                          device=device):
        if logits.shape[-1] != 1:
            raise MappingError(f"regression needs one output per example, but the model returned "
                               f"{tuple(logits.shape)}; set num_labels: 1 (task regression does)")
        predictions.append(logits.reshape(-1).float().cpu())
        targets.append(labels.reshape(-1).float().cpu())
    p, t = torch.cat(predictions), torch.cat(targets)
    mse = float((p - t).pow(2).mean())
    dp, dt = p - p.mean(), t - t.mean()
    scale = float(dp.norm() * dt.norm())
    return {"mse": mse, "pearson": float((dp * dt).sum()) / scale if scale > 0 else float("nan")}
