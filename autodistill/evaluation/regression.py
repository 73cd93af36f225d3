"""Regression figures of a model over a loader: mean squared error and Pearson correlation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from autodistill.distill.adaptor import DataAdaptor, to_device
from autodistill.errors import MappingError
from autodistill.losses.logits import extract_logits
from autodistill.modes import model_modes


@torch.inference_mode()
def regression_figures(model: nn.Module, loader: Iterable[Any], *, adaptor: DataAdaptor | None = None,
                       device: torch.device | str = "cpu") -> dict[str, float]:
    """{"mse": ..., "pearson": ...} of the model's one output per example against the targets
    (Pearson is NaN when either side is constant)."""
    adaptor = adaptor or DataAdaptor()
    device = torch.device(device)
    predictions, targets = [], []
    with model_modes(eval=[model]):
        for batch in loader:
            batch = to_device(batch, device)
            labels = adaptor.labels(batch)
            if labels is None:
                raise MappingError("regression figures need targets (labels) in the evaluation batches")
            inputs = adaptor.teacher_inputs(batch)
            logits = extract_logits(model(*inputs.args, **inputs.kwargs))
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
