"""Token-classification figures of a model over a loader: entity-level F1 (evaluation/entities.py)
and token accuracy, over the tagged positions (each word's first sub-word: label not -100)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from autodistill.data.adaptor import DataAdaptor
from autodistill.errors import MappingError
from autodistill.evaluation.batches import labelled_logits
from autodistill.evaluation.entities import entity_f1
from autodistill.losses.masking import IGNORE_INDEX


def token_figures(model: nn.Module, loader: Iterable[Any], *, adaptor: DataAdaptor | None = None,
                  device: torch.device | str = "cpu") -> dict[str, float]:
    """{"f1", "precision", "recall", "token_accuracy"}; tag names from the model's config.id2label."""
    names = getattr(getattr(model, "config", None), "id2label", None) or {}
    pairs: list[tuple[list[str], list[str]]] = []
    hits = total = 0
    for logits, labels in labelled_logits(model, loader, what="token-classification figures", adaptor=adaptor,
                                          device=device):
        predicted = logits.argmax(-1)
        if labels.dim() != 2 or predicted.shape != labels.shape:
            raise MappingError(f"token classification needs logits per token, shape {tuple(labels.shape)} "
                               f"+ (tags,), but the model returned {tuple(predicted.shape)}; use "
                               "AutoModelForTokenClassification (teacher.model_cls) and per-token labels")
        for gold_row, predicted_row in zip(labels.tolist(), predicted.tolist()):
            kept = [(g, p) for g, p in zip(gold_row, predicted_row) if g != IGNORE_INDEX]
            hits += sum(g == p for g, p in kept)
            total += len(kept)
            pairs.append(([names.get(g, str(g)) for g, _ in kept], [names.get(p, str(p)) for _, p in kept]))
    return {**entity_f1(pairs), "token_accuracy": hits / total if total else float("nan")}
