"""One evaluation pass, shared by every metric: the model's logits and the labels, batch by batch.

The model runs in eval mode (every module's own mode restored afterwards), under inference mode
and in the given precision's autocast; the inputs are what `DataAdaptor.teacher_inputs` gives
(no labels: a model's own loss is not computed for nothing). With `scored_only`, a model's
vocabulary projection runs only at the batch's scored positions (per-token labels not -100,
losses/scored_positions.py): its logits are then `(scored positions, vocabulary)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from autodistill.data.adaptor import DataAdaptor, to_device
from autodistill.errors import MappingError
from autodistill.losses.logits import extract_logits
from autodistill.losses.scored_positions import output_layer_at, scored_positions
from autodistill.modes import model_modes
from autodistill.precision import autocast


def labelled_logits(model: nn.Module, loader: Iterable[Any], *, what: str, adaptor: DataAdaptor | None = None,
                    device: torch.device | str = "cpu", precision: str = "fp32", scored_only: bool = False
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(logits, labels) of each batch of `loader`; a batch without labels is a MappingError
    naming `what` (the figures that need them)."""
    adaptor = adaptor or DataAdaptor()
    device = torch.device(device)
    with torch.inference_mode(), model_modes(eval=[model]), autocast(precision, device):
        for batch in loader:
            batch = to_device(batch, device)
            labels = adaptor.labels(batch)
            if labels is None:
                raise MappingError(f"{what} need labels in the evaluation batches")
            inputs = adaptor.teacher_inputs(batch)
            with output_layer_at([model], scored_positions(None, labels) if scored_only else None):
                logits = extract_logits(model(*inputs.args, **inputs.kwargs))
            yield logits, labels


__all__ = ["labelled_logits"]
