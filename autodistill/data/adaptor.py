"""How a batch becomes model inputs, labels and a padding mask (seed 001's data adaptor).

The default handles
- dict batches (Hugging Face style: `input_ids`, `attention_mask`, `labels`, ...);
- `(inputs, labels)` pairs: `inputs` is the model's one positional argument;
- seed 001's 4-tuples, mapped by position to `TUPLE_FIELDS` = (`input_ids`, `attention_mask`,
  `token_type_ids`, `labels`): the first three are passed by name, the mask is the padding mask.
A tuple of any other length is refused (`TupleBatchError`): give dict batches, or subclass
`DataAdaptor` to say what each position is.

Teacher and student may read different inputs (a student tokenizer other than the teacher's,
`student.tokenizer`): a dict batch then carries the student's tensors under `student_<name>`
(`student_input_ids`, `student_attention_mask`, ...; autodistill.data.PairedInputs makes them).
`teacher_inputs` never passes them; `student_inputs` passes them, without the prefix, instead of
the teacher's; `attention_mask` stays the teacher's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from autodistill.data.paired import STUDENT_PREFIX
from autodistill.errors import ConfigError

LABEL_KEYS = ("labels", "label")
TUPLE_FIELDS = ("input_ids", "attention_mask", "token_type_ids", "labels")  # seed 001's tuple batches
NON_INPUT_KEYS = ("example_index",)  # bookkeeping a batch carries that no model takes


class ModelInputs:
    """Positional and keyword arguments for one model call."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class TupleBatchError(ConfigError):
    """A tuple batch whose positions the default adaptor cannot name."""


def _tuple_fields(batch: tuple | list) -> dict[str, Any] | None:
    """Seed 001's 4-tuple by name; a pair is (inputs, labels): None; any other length refused."""
    if len(batch) == len(TUPLE_FIELDS):
        return dict(zip(TUPLE_FIELDS, batch))
    if len(batch) == 2:
        return None
    raise TupleBatchError(
        f"a tuple batch of {len(batch)} elements has no default meaning: the default adaptor reads "
        f"(inputs, labels) or {TUPLE_FIELDS}; give dict batches (e.g. a collator returning "
        "{'input_ids': ..., 'attention_mask': ..., 'labels': ...}) or a DataAdaptor subclass that names "
        "each position")


class DataAdaptor:
    def __init__(self, *, pass_labels_to_student: bool = True) -> None:
        self.pass_labels_to_student = pass_labels_to_student

    def labels(self, batch: Any) -> torch.Tensor | None:
        if isinstance(batch, Mapping):
            return next((batch[k] for k in LABEL_KEYS if k in batch), None)
        if isinstance(batch, (tuple, list)):
            fields = _tuple_fields(batch)
            return batch[1] if fields is None else fields["labels"]
        return None

    def example_indices(self, batch: Any) -> torch.Tensor | None:
        """Positions of the batch's examples in their dataset (for a teacher-output cache)."""
        return batch.get(NON_INPUT_KEYS[0]) if isinstance(batch, Mapping) else None

    def attention_mask(self, batch: Any) -> torch.Tensor | None:
        if isinstance(batch, Mapping):
            return batch.get("attention_mask")
        if isinstance(batch, (tuple, list)):
            fields = _tuple_fields(batch)
            return None if fields is None else fields["attention_mask"]
        return None

    def separate_inputs(self, batch: Any) -> bool:
        """Whether the student reads inputs of its own in `batch` (`student_<name>` fields)."""
        return isinstance(batch, Mapping) and any(str(k).startswith(STUDENT_PREFIX) for k in batch)

    def _inputs(self, batch: Any, with_labels: bool) -> ModelInputs:
        if isinstance(batch, (tuple, list)):
            fields = _tuple_fields(batch)
            if fields is None:
                return ModelInputs(batch[0])
            batch = fields
        if isinstance(batch, Mapping):
            return ModelInputs(**{k: v for k, v in batch.items() if k not in NON_INPUT_KEYS
                                  and not str(k).startswith(STUDENT_PREFIX)
                                  and (with_labels or k not in LABEL_KEYS)})
        return ModelInputs(batch)

    def student_inputs(self, batch: Any, *, with_labels: bool) -> ModelInputs:
        with_labels = with_labels and self.pass_labels_to_student
        if self.separate_inputs(batch):
            own = {k.removeprefix(STUDENT_PREFIX): v for k, v in batch.items() if k.startswith(STUDENT_PREFIX)}
            labels = {k: v for k, v in batch.items() if with_labels and k in LABEL_KEYS}
            return ModelInputs(**own, **labels)
        return self._inputs(batch, with_labels)

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
