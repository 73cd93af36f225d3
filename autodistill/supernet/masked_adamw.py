"""AdamW whose step moves only the entries a mask marks: the supernet's masked update.

A sandwich step trains a few sub-networks; the supernet entries none of them read get a zero
gradient, yet plain AdamW would still move them (decoupled weight decay shrinks them, the
momentum of earlier steps pushes them). Here an entry outside the step's mask keeps its
value and both moments, and counts its own steps, so its bias correction is that of the
updates it actually received (the "lazy Adam" of sparse embeddings, per entry). A tensor that
every step moves whole keeps one count and takes AdamW's in-place step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from autodistill.config.plan import OptimizerSpec
from autodistill.distill.optimization import parameter_groups

__all__ = ["MaskedAdamW"]


class MaskedAdamW(torch.optim.Optimizer):
    """`step(masks)`: masks[parameter] is a bool tensor of its shape, or a 0-dim True for all of it
    (missing: no entry moves)."""

    def __init__(self, named: list[tuple[str, nn.Parameter]], spec: OptimizerSpec) -> None:
        defaults = {"lr": spec.learning_rate, "betas": spec.betas, "eps": spec.eps,
                    "weight_decay": spec.weight_decay}
        super().__init__(parameter_groups(named, spec.weight_decay), defaults)

    @torch.no_grad()
    def step(self, masks: Mapping[nn.Parameter, Tensor]) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                mask = masks.get(p)
                if p.grad is None or mask is None:
                    continue
                state = self.state[p]
                if not state:
                    # one count for the whole tensor while every step moves all of it; one per entry after
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                if state["step"].device != p.device:  # load_state_dict leaves step counts where they were saved
                    state["step"] = state["step"].to(p.device)
                if bool(mask.all()) and state["step"].dim() == 0:
                    self._dense_step(p, group, state)
                else:
                    self._masked_step(p, group, state, mask)

    @staticmethod
    def _dense_step(p: Tensor, group: dict, state: dict) -> None:
        """Every entry moves (the common case: the largest sub-network reads the whole supernet):
        AdamW in place, with one bias correction for the tensor."""
        beta1, beta2 = group["betas"]
        state["step"].add_(1)
        step = float(state["step"])
        state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        p.mul_(1 - group["lr"] * group["weight_decay"])
        denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2 ** step)).add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / (1 - beta1 ** step))

    @staticmethod
    def _masked_step(p: Tensor, group: dict, state: dict, mask: Tensor) -> None:
        """Only the masked entries move; each entry counts its own steps for its bias correction."""
        beta1, beta2 = group["betas"]
        if state["step"].dim() == 0:
            state["step"] = torch.full_like(p, float(state["step"]), dtype=torch.float32)
        steps, exp_avg, exp_avg_sq, grad = state["step"], state["exp_avg"], state["exp_avg_sq"], p.grad
        assert grad is not None  # step() skips parameters without a gradient
        steps.add_(mask)
        exp_avg.copy_(torch.where(mask, exp_avg * beta1 + grad * (1 - beta1), exp_avg))
        exp_avg_sq.copy_(torch.where(mask, exp_avg_sq * beta2 + grad * grad * (1 - beta2), exp_avg_sq))
        counted = steps.clamp_min(1)
        m_hat = exp_avg / (1 - beta1 ** counted)
        v_hat = exp_avg_sq / (1 - beta2 ** counted)
        update = m_hat / (v_hat.sqrt() + group["eps"]) + group["weight_decay"] * p
        p.sub_(torch.where(mask, group["lr"] * update, torch.zeros_like(p)))
