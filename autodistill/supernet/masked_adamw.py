"""AdamW whose step moves only the entries a mask marks: the supernet's masked update.

A sandwich step trains a few sub-networks; the supernet entries none of them read get a zero
gradient, yet plain AdamW would still move them (decoupled weight decay shrinks them, the
momentum of earlier steps pushes them). Here an entry outside the step's mask keeps its
value and both moments, and counts its own steps, so its bias correction is that of the
updates it actually received (the "lazy Adam" of sparse embeddings, per entry).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from autodistill.config.plan import OptimizerSpec
from autodistill.distill.optimization import parameter_groups

__all__ = ["MaskedAdamW"]


class MaskedAdamW(torch.optim.Optimizer):
    """`step(masks)`: masks[parameter] is a bool tensor of its shape (missing: no entry moves)."""

    def __init__(self, named: list[tuple[str, nn.Parameter]], spec: OptimizerSpec) -> None:
        defaults = {"lr": spec.learning_rate, "betas": spec.betas, "eps": spec.eps,
                    "weight_decay": spec.weight_decay}
        super().__init__(parameter_groups(named, spec.weight_decay), defaults)

    @torch.no_grad()
    def step(self, masks: Mapping[nn.Parameter, Tensor]) -> None:  # type: ignore[override]
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                mask = masks.get(p)
                if p.grad is None or mask is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                steps, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
                grad = p.grad
                if bool(mask.all()):  # the common case (the largest sub-network reads it all): in place
                    steps.add_(1)
                    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    p.sub_(group["lr"] * self._update(p, group, steps, exp_avg, exp_avg_sq))
                    continue
                steps.add_(mask)
                exp_avg.copy_(torch.where(mask, exp_avg * beta1 + grad * (1 - beta1), exp_avg))
                exp_avg_sq.copy_(torch.where(mask, exp_avg_sq * beta2 + grad * grad * (1 - beta2), exp_avg_sq))
                update = self._update(p, group, steps, exp_avg, exp_avg_sq)
                p.sub_(torch.where(mask, group["lr"] * update, torch.zeros_like(p)))

    @staticmethod
    def _update(p: Tensor, group: dict, steps: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor) -> Tensor:
        """AdamW's step direction per entry, bias-corrected by the entry's own step count."""
        beta1, beta2 = group["betas"]
        counted = steps.clamp_min(1)
        m_hat = exp_avg / (1 - beta1 ** counted)
        v_hat = exp_avg_sq / (1 - beta2 ** counted)
        return m_hat / (v_hat.sqrt() + group["eps"]) + group["weight_decay"] * p
