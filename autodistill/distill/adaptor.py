"""How a batch becomes model inputs, labels and a padding mask (seed 001's data adaptor).

The default handles dict batches (Hugging Face style: `input_ids`,
`attention_mask`, `labels`, ...) and `(inputs, labels)` tuples. Subclass it to feed
the teacher and the student different inputs from one batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

LABEL_KEYS = ("labels", "label")
NON_INPUT_KEYS = ("example_index",)  # bookkeeping a batch carries that no model takes


class ModelInputs:
    """Positional and keyword arguments for one model call."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class DataAdaptor:
    def __init__(self, *, pass_labels_to_student: bool = True) -> None:
        self.pass_labels_to_student = pass_labels_to_student

    def labels(self, batch: Any) -> torch.Tensor | None:
        if isinstance(batch, Mapping):
            return next((batch[k] for k in LABEL_KEYS if k in batch), None)
        if isinstance(batch, (tuple, list)) and len(batch) >= 2:
            return batch[1]
        return None

    def example_indices(self, batch: Any) -> torch.Tensor | None:
        """Positions of the batch's examples in their dataset (for a teacher-output cache)."""
        return batch.get(NON_INPUT_KEYS[0]) if isinstance(batch, Mapping) else None

    def attention_mask(self, batch: Any) -> torch.Tensor | None:
        return batch.get("attention_mask") if isinstance(batch, Mapping) else None

    def _inputs(self, batch: Any, with_labels: bool) -> ModelInputs:
        if isinstance(batch, Mapping):
            return ModelInputs(**{k: v for k, v in batch.items() if k not in NON_INPUT_KEYS
                                  and (with_labels or k not in LABEL_KEYS)})
        if isinstance(batch, (tuple, list)):
            return ModelInputs(batch[0])
        return ModelInputs(batch)

    def student_inputs(self, batch: Any, *, with_labels: bool) -> ModelInputs:
        return self._inputs(batch, with_labels and self.pass_labels_to_student)

    def teacher_inputs(self, batch: Any) -> ModelInputs:
        return self._inputs(batch, False)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
