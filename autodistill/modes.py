"""Teacher in eval mode, student in train mode, for a block; each model's own mode back after it.

    with model_modes(eval=teachers, train=[student]):
        ...

What TextBrewer's `DistillationContext` does for its distillers, in one place for every loop
here (distillation, the plan probe, the teacher cache, evaluation, importance ordering) instead
of a hand-written save-set-restore block in each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def model_modes(*, eval: Iterable[nn.Module | None] = (), train: Iterable[nn.Module | None] = ()
                ) -> Iterator[None]:
    """Put `eval` models in eval mode and `train` models in train mode (None entries are skipped)
    for the block; restore every module's own `training` flag afterwards, even on an exception."""
    models = [(m, False) for m in eval if m is not None] + [(m, True) for m in train if m is not None]
    saved = [(module, module.training) for model, _ in models for module in model.modules()]
    try:
        for model, training in models:
            model.train(training)
        yield
    finally:
        for module, training in saved:
            module.training = training


__all__ = ["model_modes"]
