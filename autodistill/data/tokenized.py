"""Texts tokenised once into padded tensors, and seeded loaders over them.

Tokenisation is the same for every trial of a study, so it happens once per data
set and sequence length; each trial only slices the resulting tensors.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, Dataset

from autodistill.data.examples import LabelledTexts
from autodistill.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

EXAMPLE_INDEX = "example_index"
_TOKENIZER_OUTPUTS = ("input_ids", "attention_mask", "token_type_ids")
MAX_SEQUENCE_LENGTH = 65_536  # a bound for tokenizers without a model_max_length


class TokenizedDataset(Dataset):
    """Labelled texts as fixed-length token tensors.

    `tensors` maps "input_ids", "attention_mask", "token_type_ids" (only when the
    tokenizer makes them) and "labels" to tensors whose first dimension is the
    example; slice them directly for fast batches. Texts longer than `max_length`
    tokens are truncated and shorter ones padded to it; with `windows`, a longer text
    is read whole instead, as consecutive windows of up to `max_length` tokens (each
    with its own special tokens, the last one padded), each window an example with its
    text's label (`text_of[i]`: the text example i was cut from).
    """

    def __init__(
        self, data: LabelledTexts, tokenizer: PreTrainedTokenizerBase, *, max_length: int,
        windows: bool = False,
    ) -> None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ConfigError(
                f"max_length must be an integer >= 2 (room for the special tokens), "
                f"but got {max_length!r}"
            )
        if max_length > MAX_SEQUENCE_LENGTH:  # the tokenizer would abort (Rust) or fill the memory
            raise ConfigError(
                f"data.max_length must be at most {MAX_SEQUENCE_LENGTH:,} tokens (more than any "
                f"model's positions), but got {max_length:,}; lower it"
            )
        if max_length > tokenizer.model_max_length:
            raise ConfigError(
                f"max_length must be at most the tokenizer's model_max_length "
                f"{tokenizer.model_max_length}, but got {max_length}; lower it"
            )
        if len(data) == 0:
            raise ConfigError("cannot tokenise an empty data set; give it at least one text")
        if windows and not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                f"data.training_windows needs a fast tokenizer (one that maps each window to its text), "
                f"but {type(tokenizer).__name__} is not; use the model's fast tokenizer or remove "
                "data.training_windows")
        encoded = tokenizer(
            list(data.texts),
            truncation=True,
            padding="max_length",
            max_length=max_length,
            return_tensors="pt",
            **({"return_overflowing_tokens": True} if windows else {}),
        )
        self.tensors: dict[str, torch.Tensor] = {
            name: encoded[name] for name in _TOKENIZER_OUTPUTS if name in encoded
        }
        self.text_of = encoded["overflow_to_sample_mapping"] if windows else torch.arange(len(data))
        self.tensors["labels"] = (torch.tensor(data.labels, dtype=torch.long) if data.targets is None
                                  else torch.tensor(data.targets, dtype=torch.float32))[self.text_of]

    def __len__(self) -> int:
        return len(self.tensors["labels"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {name: tensor[index] for name, tensor in self.tensors.items()}
        item[EXAMPLE_INDEX] = torch.tensor(index)  # lets a teacher-output cache find the row
        return item

    def fingerprint(self) -> str:
        """A hash of the token tensors and labels: equal data, equal fingerprint."""
        digest = hashlib.sha256()
        for name in sorted(self.tensors):
            digest.update(name.encode())
            digest.update(self.tensors[name].numpy().tobytes())
        return digest.hexdigest()


def make_loader(
    dataset: Dataset, *, batch_size: int, shuffle: bool, seed: int = 0
) -> DataLoader:
    """Batches of `dataset` as dicts of stacked tensors, in an order fixed by `seed`.

    With `shuffle`, a loader's own `torch.Generator(seed)` draws each epoch's
    order, so two loaders with the same seed yield the same batches, epoch by
    epoch, whatever else uses the global random state.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, but got {batch_size!r}")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
