"""Shared fixtures: tiny real transformers models and a learnable toy task."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import csv
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

# tiny models are faster on one thread than on two (and tests share the machine)
torch.set_num_threads(1)
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast, PreTrainedModel  # noqa: E402

VOCAB = 60
SEQ = 12


def tiny_bert_config(*, hidden: int = 32, layers: int = 2, heads: int = 4, labels: int = 2,
                     intermediate: int | None = None, vocab: int = VOCAB, dropout: float | None = 0.0,
                     **extra: Any) -> BertConfig:
    """The one tiny BERT of the tests: intermediate 2 x hidden unless given, 32 positions;
    `dropout` None keeps transformers' defaults (0.1), `extra` sets any other BertConfig field."""
    if dropout is not None:
        extra = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout, **extra}
    return BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=intermediate or 2 * hidden, num_labels=labels,
                      max_position_embeddings=extra.pop("max_position_embeddings", 32), **extra)


def tiny_bert(*, seed: int = 0, cls: type[PreTrainedModel] = BertForSequenceClassification,
              attn_implementation: str = "eager", **sizes: Any) -> Any:
    """A fresh tiny BERT (`cls`, a sequence classifier unless given) with seeded weights; `sizes`
    as `tiny_bert_config` takes them."""
    torch.manual_seed(seed)
    return cls._from_config(tiny_bert_config(**sizes), attn_implementation=attn_implementation)


def tiny_tokenizer(root: Path, *, extra: Sequence[str] = ()) -> BertTokenizerFast:
    """A WordPiece tokenizer of the special tokens, `WORDS` and `extra` (its vocab.txt in root/vocab)."""
    vocab = root / "vocab"
    vocab.mkdir()
    (vocab / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *extra]) + "\n")
    return BertTokenizerFast.from_pretrained(str(vocab))


def save_tiny_bert(folder: Path, *, tokenizer: BertTokenizerFast | None = None, seed: int | None = 0,
                   cls: type[PreTrainedModel] = BertForSequenceClassification, **sizes: Any) -> Path:
    """A saved tiny BERT (`tiny_bert_config` sizes, transformers' dropout and attention defaults) in
    `folder`, with `tokenizer` beside it and a vocabulary its size; `seed` None continues the
    current random stream."""
    if tokenizer is not None:
        sizes.setdefault("vocab", len(tokenizer))
    if seed is not None:
        torch.manual_seed(seed)
    cls(tiny_bert_config(**{"dropout": None, **sizes})).save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


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


# A config's tiny search, format-escaped (`.format(out=...)` with the config's other keys): two
# students of 1-2 layers, timed on one thread. TINY_SEARCH opens `auto_distillation:`; the
# config's own stages follow it, then TINY_SEARCH_END.
TINY_SEARCH = """\
auto_distillation:
  seed: 3
  progress: false
  optimizer: {{name: AdamW, learning_rate: 0.003}}
  search:
    search_space: {{hidden_size: [8, 16], num_hidden_layers: {{low: 1, high: 2}}, num_attention_heads: [2]}}
    search_algorithm: random
    max_trials: 2
    seed: 0
"""
TINY_SEARCH_END = """\
  evaluation:
    latency: {{batch_size: 1, warmup: 1, repeats: 20, threads: 1}}
output_dir: {out}
"""


@pytest.fixture
def teacher() -> BertForSequenceClassification:
    return tiny_bert(hidden=32, layers=4, heads=4, seed=0)


@pytest.fixture
def student() -> BertForSequenceClassification:
    return tiny_bert(hidden=16, layers=2, heads=2, seed=1)


WORDS = ["good", "great", "fine", "bad", "awful", "poor", "the", "film", "was", "plot", "acting", "very"]


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """A saved tiny BERT teacher with its tokenizer, and train/dev/test CSVs (label pos/neg)."""
    return write_workspace(tmp_path_factory.mktemp("distill_cli"))


@pytest.fixture
def cache_teacher() -> BertForSequenceClassification:
    """The teacher-cache tests' teacher: 2 layers, in eval mode (a cache serves a fixed teacher)."""
    return tiny_bert(hidden=32, layers=2, heads=4, labels=2, seed=0).eval()


@pytest.fixture
def train_set(workspace: Path) -> Any:
    """The workspace's train.csv tokenised by its teacher's tokenizer (max_length 12): a
    TokenizedDataset, which a teacher cache keys by its fingerprint."""
    from transformers import AutoTokenizer

    from autodistill.data import TokenizedDataset, read_text_file

    tokenizer = AutoTokenizer.from_pretrained(workspace / "teacher")
    return TokenizedDataset(read_text_file(workspace / "train.csv"), tokenizer, max_length=12)


def write_workspace(root: Path) -> Path:
    """The `workspace` fixture's files in `root` (also used by scripts/bench_resume.py)."""
    save_tiny_bert(root / "teacher", tokenizer=tiny_tokenizer(root))
    rng = random.Random(0)
    for name, n in (("train.csv", 64), ("dev.csv", 16), ("test.csv", 16)):
        with open(root / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for _ in range(n):
                label = rng.choice(["pos", "neg"])
                first = rng.choice(WORDS[:3] if label == "pos" else WORDS[3:6])
                writer.writerow([" ".join([first] + rng.choices(WORDS[6:], k=6)), label])
    return root


@pytest.fixture(scope="session")
def finished_search(workspace, tmp_path_factory) -> tuple[Path, Path]:
    """(output dir, config) of one finished tiny search (test_search's config, 4 trials), shared
    read-only by the report, export and dashboard tests."""
    from test_search import write_config

    from autodistill.cli import main

    out = tmp_path_factory.mktemp("finished") / "run"
    config = write_config(workspace, out)
    assert main(["search", str(config), "--quiet"]) == 0
    return out, config
