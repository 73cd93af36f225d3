"""Masked-LM data: texts tokenised once and masked once, as BERT's pre-training masks them.

The masking is transformers' `DataCollatorForLanguageModeling` (15% of the real, non-special
tokens are chosen; of those 80% become [MASK], 10% a random token, 10% stay as they are),
drawn once per data set with its own seeded `torch.Generator`: every trial, every epoch and
every worker sees the same masks, so validation figures compare across trials and the
teacher's outputs on a masked batch are the same each time they are read. With
`data.training_windows` the training split reads every text whole, in windows of
`max_length` tokens (TokenizedDataset's `windows`), masked the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from autodistill.data.examples import LabelledTexts
from autodistill.data.tokenized import TokenizedDataset
from autodistill.errors import ConfigError
from autodistill.losses.masking import IGNORE_INDEX

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MLM_PROBABILITY = 0.15  # share of real tokens to predict
MASK_SHARE, RANDOM_SHARE = 0.8, 0.1  # of the chosen tokens; the rest keep their own token


class MaskedTokens(TokenizedDataset):
    """`TokenizedDataset` whose `input_ids` are masked and whose `labels` are per token: the
    original id where a token was chosen, `IGNORE_INDEX` elsewhere (padding and special tokens
    are never chosen)."""

    def __init__(self, data: LabelledTexts, tokenizer: PreTrainedTokenizerBase, *, max_length: int,
                 seed: int, windows: bool = False) -> None:
        if tokenizer.mask_token_id is None:
            raise ConfigError("data.tokenizer: task masked_lm needs a tokenizer with a mask token "
                              "([MASK]); use the teacher's masked-LM tokenizer")
        super().__init__(data, tokenizer, max_length=max_length, windows=windows)
        ids = self.tensors["input_ids"]
        generator = torch.Generator().manual_seed(seed)
        special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
        real = self.tensors["attention_mask"].bool() if "attention_mask" in self.tensors else ids.ne(-1)
        chosen = (torch.rand(ids.shape, generator=generator) < MLM_PROBABILITY) & real & ~special
        draw = torch.rand(ids.shape, generator=generator)
        randoms = torch.randint(len(tokenizer), ids.shape, generator=generator)
        masked = torch.where(chosen & (draw < MASK_SHARE), tokenizer.mask_token_id, ids)
        replaced = chosen & (draw >= MASK_SHARE) & (draw < MASK_SHARE + RANDOM_SHARE)
        self.tensors["input_ids"] = torch.where(replaced, randoms, masked)
        self.tensors["labels"] = torch.where(chosen, ids, IGNORE_INDEX)
