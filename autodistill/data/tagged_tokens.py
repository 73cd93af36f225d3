"""Tagged words tokenised once: each word's tag on its first sub-word token, -100 elsewhere.

The words are the text split at spaces (data/token_files.py joins them so); later sub-words,
special tokens and padding carry IGNORE_INDEX, so losses, logit KD and metrics skip them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from autodistill.data.examples import LabelledTexts
from autodistill.data.tokenized import _TOKENIZER_OUTPUTS, TokenizedDataset
from autodistill.errors import ConfigError
from autodistill.losses.masking import IGNORE_INDEX

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class TaggedTokens(TokenizedDataset):
    """`TokenizedDataset` with per-token `labels` from the words' tags."""

    def __init__(self, data: LabelledTexts, tokenizer: PreTrainedTokenizerBase, *, max_length: int) -> None:
        if data.tags is None:
            raise ConfigError("data.label_column: task token_classification needs a tag per word; "
                              "read the data with autodistill.data.token_files.read_tagged_file")
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError("data.tokenizer: task token_classification needs a fast tokenizer (it maps "
                              "tokens to words); use the teacher's tokenizer.json")
        super().__init__(data, tokenizer, max_length=max_length)
        encoded = tokenizer([text.split(" ") for text in data.texts], is_split_into_words=True,
                            truncation=True, padding="max_length", max_length=max_length, return_tensors="pt")
        self.tensors.update({name: encoded[name] for name in _TOKENIZER_OUTPUTS if name in encoded})
        labels = torch.full(encoded["input_ids"].shape, IGNORE_INDEX, dtype=torch.long)
        for row, tags in enumerate(data.tags):
            previous = None
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None and word != previous:
                    labels[row, position] = tags[word]
                previous = word
        self.tensors["labels"] = labels
