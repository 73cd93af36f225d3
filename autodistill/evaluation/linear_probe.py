"""A linear probe: what a classifier's features are worth with a head fitted to them.

`refit_accuracy` fits an L2-regularised logistic regression (scikit-learn's default objective,
by LBFGS from zero) on the input of a model's classification head over some training batches
and scores it on validation. The supernet's proxies use it (`supernet.proxy_head: refit`): a
narrow slice's sliced head scores it far below what its features can do (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from autodistill.evaluation.batches import labelled_logits


def refit_accuracy(model: nn.Module, train_batches: Sequence[Any], validation: Any) -> float:
    """Accuracy on `validation` of a linear classifier (L2-regularised logistic regression, as
    scikit-learn's default, fitted by LBFGS from zero) on the features `model`'s classification
    head reads, fitted on `train_batches`: what the sub-network's representation is worth with
    a head of its own, whatever its sliced head makes of it."""
    train_features, train_labels = head_features(model, train_batches)
    head = nn.Linear(train_features.shape[1], _classifier(model).out_features)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = nn.functional.cross_entropy(head(train_features), train_labels) \
            + head.weight.square().sum() / (2 * len(train_labels))
        value.backward()
        return value

    optimizer.step(loss)
    features, labels = head_features(model, validation)
    with torch.no_grad():
        return float((head(features).argmax(-1) == labels).float().mean())


def head_features(model: nn.Module, loader: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, labels) over `loader`: the input of `model`'s last linear layer, its classifier
    (for a head reading the whole sequence, the first token's), one row per example."""
    captured: list[torch.Tensor] = []
    handle = _classifier(model).register_forward_pre_hook(lambda _, args: captured.append(args[0].detach().float()))
    try:
        labels = [batch_labels for _, batch_labels in labelled_logits(model, loader, what="proxy_head refit",
                                                                      device=next(model.parameters()).device)]
    finally:
        handle.remove()
    features = torch.cat([c[:, 0] if c.dim() == 3 else c for c in captured]).cpu()
    return features, torch.cat(labels).cpu()


def _classifier(model: nn.Module) -> nn.Linear:
    """`model`'s last linear layer: its classifier."""
    return [module for module in model.modules() if isinstance(module, nn.Linear)][-1]


__all__ = ["head_features", "refit_accuracy"]
