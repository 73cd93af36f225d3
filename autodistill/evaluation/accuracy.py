"""Classification accuracy of a model over a loader."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from autodistill.distill.adaptor import DataAdaptor, to_device
from autodistill.distill.precision import autocast
from autodistill.errors import MappingError
from autodistill.losses.logits import extract_logits
from autodistill.modes import model_modes


@torch.inference_mode()
def accuracy(model: nn.Module, loader: Iterable[Any], *, adaptor: DataAdaptor | None = None,
             device: torch.device | str = "cpu", precision: str = "fp32") -> float:
    """Share of examples whose arg-max logit equals the label; forward passes in `precision`
    (autodistill.distill.precision: fp32, bf16 or fp16 autocast)."""
    adaptor = adaptor or DataAdaptor()
    device = torch.device(device)
    hits = total = 0
    with model_modes(eval=[model]), autocast(precision, device):
        for batch in loader:
            batch = to_device(batch, device)
            labels = adaptor.labels(batch)
            if labels is None:
                raise MappingError("accuracy needs labels in the evaluation batches")
            inputs = adaptor.teacher_inputs(batch)
            logits = extract_logits(model(*inputs.args, **inputs.kwargs))
            hits += int((logits.argmax(-1) == labels).sum())
            total += labels.numel()
    return hits / total if total else float("nan")
