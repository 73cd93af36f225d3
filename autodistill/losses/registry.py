"""The loss registries: feature/logit losses between student and teacher, and target losses.

A feature loss is `fn(student, teacher, context) -> scalar tensor`, where
`context` is a `LossContext` (padding mask, temperature, whether each side is
already a probability distribution). Users add their own the same way the
built-ins are added:

    from autodistill import LOSSES
    LOSSES.register("SmoothL1", lambda s, t, ctx: F.smooth_l1_loss(s, t))

A target loss is `fn(student_logits, labels, context) -> scalar tensor`. The registries
themselves live at the ground (autodistill/registries.py), where config checks names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from autodistill.registries import LOSSES, TARGET_LOSSES


@dataclass(frozen=True)
class LossContext:
    mask: torch.Tensor | None = None
    temperature: float = 1.0
    student_is_probs: bool = False
    teacher_is_probs: bool = False


FeatureLoss = Callable[[torch.Tensor, torch.Tensor, LossContext], torch.Tensor]
TargetLoss = Callable[[torch.Tensor, torch.Tensor, LossContext], torch.Tensor]

__all__ = ["LOSSES", "TARGET_LOSSES", "FeatureLoss", "LossContext", "TargetLoss"]
