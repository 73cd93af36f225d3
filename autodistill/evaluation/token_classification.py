"""Token-classification figures of a model over a loader: entity-level F1 (evaluation/entities.py)
and token accuracy, over the tagged positions (each word's first sub-word: label not -100)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from autodistill.distill.adaptor import DataAdaptor, to_device
from autodistill.errors import MappingError
from autodistill.evaluation.entities import entity_f1
from autodistill.losses.logits import extract_logits
from autodistill.losses.masking import IGNORE_INDEX
from autodistill.modes import model_modes


@torch.inference_mode()
def token_figures(model: nn.Module, loader: Iterable[Any], *, adaptor: DataAdaptor | None = None,
                  device: torch.device | str = "cpu") -> dict[str, float]:
    """{"f1", "precision", "recall", "token_accuracy"}; tag names from the model's config.id2label."""
    adaptor = adaptor or DataAdaptor()
    device = torch.device(device)
    names = getattr(getattr(model, "config", None), "id2label", None) or {}
    pairs: list[tuple[list[str], list[str]]] = []
    hits = total = 0
    with model_modes(eval=[model]):
        for batch in loader:
            batch = to_device(batch, device)
            labels = adaptor.labels(batch)
            if labels is None or labels.dim() != 2:
                raise MappingError("token-classification figures need per-token labels in the batches")
            inputs = adaptor.teacher_inputs(batch)
            predicted = extract_logits(model(*inputs.args, **inputs.kwargs)).argmax(-1)
            if predicted.shape != labels.shape:
                raise MappingError(f"token classification needs logits per token, shape {tuple(labels.shape)} "
                                   f"+ (tags,), but the model returned {tuple(predicted.shape)}; use "
                                   "AutoModelForTokenClassification (teacher.model_cls)")
            for gold_row, predicted_row in zip(labels.tolist(), predicted.tolist()):
                kept = [(g, p) for g, p in zip(gold_row, predicted_row) if g != IGNORE_INDEX]
                hits += sum(g == p for g, p in kept)
                total += len(kept)
                pairs.append(([names.get(g, str(g)) for g, _ in kept], [names.get(p, str(p)) for _, p in kept]))
    return {**entity_f1(pairs), "token_accuracy": hits / total if total else float("nan")}
