"""Built-in losses: MSE, KL, CE (soft targets), cosine; and the student-target losses.

Reductions are the textbook ones, made padding-aware:
- KL and CE are summed over the distribution (last) dimension and averaged over
  the positions that are real tokens ('batchmean' per position), then multiplied
  by T^2 so gradients keep their scale across temperatures (Hinton et al.);
- MSE averages over real elements; cosine averages 1 - cos over real positions.
Features that are already probabilities (attention maps) are used as they are;
logits are softened with the temperature. Their names are registered in
autodistill/registries.py (LOSSES, TARGET_LOSSES), which imports this module on first use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autodistill.losses.masking import IGNORE_INDEX, element_mask, masked_mean, position_mask
from autodistill.losses.registry import LossContext

_TINY = 1e-12


def _log_probs(x: torch.Tensor, is_probs: bool, temperature: float) -> torch.Tensor:
    if is_probs:
        return torch.log(x.clamp_min(_TINY))
    return F.log_softmax(x / temperature, dim=-1)


def _probs(x: torch.Tensor, is_probs: bool, temperature: float) -> torch.Tensor:
    return x if is_probs else F.softmax(x / temperature, dim=-1)


def _soft_scale(ctx: LossContext) -> float:
    both_probs = ctx.student_is_probs and ctx.teacher_is_probs
    return 1.0 if both_probs else ctx.temperature ** 2


def kl_divergence(student: torch.Tensor, teacher: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    """KL(teacher || student) per position, batchmean over real positions, x T^2."""
    t = ctx.temperature
    p_teacher = _probs(teacher, ctx.teacher_is_probs, t)
    log_p_teacher = _log_probs(teacher, ctx.teacher_is_probs, t)
    log_p_student = _log_probs(student, ctx.student_is_probs, t)
    per_position = (p_teacher * (log_p_teacher - log_p_student)).sum(-1)
    return masked_mean(per_position, position_mask(ctx.mask, student.shape)) * _soft_scale(ctx)


def soft_cross_entropy(student: torch.Tensor, teacher: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    """-sum p_teacher log p_student per position, batchmean over real positions, x T^2."""
    t = ctx.temperature
    p_teacher = _probs(teacher, ctx.teacher_is_probs, t)
    log_p_student = _log_probs(student, ctx.student_is_probs, t)
    per_position = -(p_teacher * log_p_student).sum(-1)
    return masked_mean(per_position, position_mask(ctx.mask, student.shape)) * _soft_scale(ctx)


def mean_squared_error(student: torch.Tensor, teacher: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    """Mean squared difference over the real (unpadded) elements."""
    return masked_mean((student - teacher).pow(2), element_mask(ctx.mask, student.shape))


def cosine_distance(student: torch.Tensor, teacher: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    """1 - cosine similarity along the feature dimension, averaged over real positions."""
    per_position = 1.0 - F.cosine_similarity(student, teacher, dim=-1, eps=1e-8)
    return masked_mean(per_position, position_mask(ctx.mask, student.shape))


def target_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    """Cross-entropy against class ids (-100 ignored) or against soft label distributions."""
    if labels.dtype.is_floating_point and labels.shape == logits.shape:
        return soft_cross_entropy(logits, labels, LossContext(mask=ctx.mask, teacher_is_probs=True))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX)


def target_mean_squared_error(logits: torch.Tensor, labels: torch.Tensor, ctx: LossContext) -> torch.Tensor:
    """Regression: MSE between the (squeezed) prediction and float targets."""
    prediction = logits.squeeze(-1) if logits.shape[-1] == 1 else logits
    return F.mse_loss(prediction, labels.to(prediction.dtype).reshape(prediction.shape))
