"""Shared fixtures: tiny real transformers models and a learnable toy task."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

# tiny models are faster on one thread than on two (and tests share the machine)
torch.set_num_threads(1)
from transformers import BertConfig, BertForSequenceClassification

VOCAB = 60
SEQ = 12


def tiny_bert(*, hidden: int = 32, layers: int = 2, heads: int = 4, labels: int = 2,
              seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 2, num_labels=labels,
                        max_position_embeddings=32, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification._from_config(config, attn_implementation="eager")


def toy_batches(n_batches: int = 8, batch_size: int = 16, *, seed: int = 1, padded: bool = True
                ) -> list[dict[str, torch.Tensor]]:
    """Label 1 when the first token is in the upper half of the vocabulary: learnable from one token."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        ids = torch.randint(1, VOCAB, (batch_size, SEQ), generator=g)
        mask = torch.ones_like(ids)
        if padded:
            lengths = torch.randint(SEQ // 2, SEQ + 1, (batch_size,), generator=g)
            mask = (torch.arange(SEQ)[None, :] < lengths[:, None]).long()
            ids = ids * mask
        labels = (ids[:, 0] >= VOCAB // 2).long()
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return batches


@pytest.fixture
def teacher() -> BertForSequenceClassification:
    return tiny_bert(hidden=32, layers=4, heads=4, seed=0)


@pytest.fixture
def student() -> BertForSequenceClassification:
    return tiny_bert(hidden=16, layers=2, heads=2, seed=1)
