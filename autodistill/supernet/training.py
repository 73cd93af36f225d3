"""Train the supernet once by the sandwich rule, with a masked update and resumable checkpoints.

Each optimizer step trains the space's largest and smallest sub-networks and
`section.random_subnets` random ones (`autodistill.supernet.sandwich`) on one batch: their
losses are averaged (gradients accumulated, one backward each), then one `MaskedAdamW` step
moves only the entries some of them read.

The loss is the regular distillation's logit KD: KL(teacher || sub-network) at temperature T,
x T^2, plus the task cross-entropy, weighted by `section.loss_weights` (the regular stage's,
filled in when the config is read; 0.5/0.5 otherwise). The proxy score of an architecture is
the validation accuracy of its slice, and its final training is that same distillation, so
training the shared weights on the same objective keeps the proxy ranking aligned with what
the final trials optimise; the teacher's logits come from the teacher cache when one is given
(computed once), so a step runs no teacher forward. In-place distillation (OFA: small
sub-networks learn from the largest) would save the teacher's forward, which the cache saves
already, at the price of a moving target.

Every `section.checkpoint_every_steps` the model, optimizer, schedule, torch RNG state, step and
loss history go to the store; a run that starts with a checkpoint there restores it and skips
the batches already seen, so it ends with the weights an uninterrupted run has.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from autodistill.config.sections import OptimizerSection, ScheduleSection
from autodistill.config.supernet import SupernetSection
from autodistill.data.adaptor import DataAdaptor, to_device
from autodistill.distill.optimization import build_schedule
from autodistill.distill.progress import Progress
from autodistill.distill.teacher_cache import LOGITS, TeacherCache
from autodistill.errors import NonFiniteLossError
from autodistill.losses.logits import extract_logits
from autodistill.losses.registry import LOSSES, TARGET_LOSSES, LossContext
from autodistill.space import SearchSpace
from autodistill.supernet.elastic import ElasticModel
from autodistill.supernet.masked_adamw import MaskedAdamW
from autodistill.supernet.sandwich import SubNetwork, corners, sandwich, space_grid
from autodistill.supernet.store import SupernetStore

__all__ = ["SupernetReport", "train_supernet"]

log = logging.getLogger(__name__)

SIZES = ("largest", "smallest", "random")
_DEFAULT_WEIGHTS = (0.5, 0.5)


@dataclass(frozen=True)
class SupernetReport:
    """`losses[i]`: step i+1's mean loss per sub-network size; `resumed_from`: the checkpoint's step;
    `seconds` wall time and `cpu_seconds` this process's CPU time (all threads) of the steps run here."""

    steps: int
    resumed_from: int
    seconds: float
    cpu_seconds: float
    losses: tuple[Mapping[str, float], ...]

    def last_losses(self, window: int = 20) -> dict[str, float]:
        """Mean loss per size over the last `window` steps."""
        return _mean_losses(self.losses[-window:])


def _mean_losses(steps: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean loss per sub-network size over `steps` (sizes none of them trained left out)."""
    means = {}
    for size in SIZES:
        values = [step[size] for step in steps if size in step]
        if values:
            means[size] = sum(values) / len(values)
    return means


def _cycle(loader: Any, skip: int) -> Iterator[Any]:
    """The loader's batches epoch after epoch, the first `skip` dropped (a resumed run's position)."""
    seen = 0
    while True:
        for batch in loader:
            if seen >= skip:
                yield batch
            seen += 1


def _masks(elastic: ElasticModel, subnets: list[SubNetwork]) -> dict[nn.Parameter, Tensor]:
    """Per supernet parameter, the entries some sub-network of the step read (a 0-dim True: all)."""
    params = dict(elastic.model.named_parameters())
    everything = torch.ones((), dtype=torch.bool, device=next(iter(params.values())).device)
    masks: dict[nn.Parameter, Tensor] = {}
    for _, architecture in subnets:
        for name, slices in elastic.parameter_slices(architecture).items():
            param = params[name]
            if masks.get(param) is everything:
                continue
            if all(s.stop >= n for s, n in zip(slices, param.shape)):
                masks[param] = everything
                continue
            if param not in masks:
                masks[param] = torch.zeros_like(param, dtype=torch.bool)
            masks[param][slices] = True
    return masks


class _Objective:
    """KD from the teacher's logits (cached or live) plus the task loss, for one sub-network."""

    def __init__(self, section: SupernetSection, teacher: nn.Module, teacher_cache: TeacherCache | None,
                 adaptor: DataAdaptor) -> None:
        self.temperature = section.temperature or 1.0
        self.kd_weight, self.task_weight = section.loss_weights or _DEFAULT_WEIGHTS
        self.teacher, self.cache, self.adaptor = teacher, teacher_cache, adaptor
        self.kd, self.task = LOSSES.get("KL"), TARGET_LOSSES.get("CE")
        if self.cache is not None and self.kd_weight:
            self.cache.ensure([LOGITS])

    def teacher_logits(self, batch: Any, device: torch.device) -> Tensor | None:
        if not self.kd_weight:
            return None
        indices = self.adaptor.example_indices(batch)
        if self.cache is not None and indices is not None:
            return self.cache.lookup(indices, [LOGITS], device).get(*LOGITS)
        inputs = self.adaptor.teacher_inputs(batch)
        with torch.inference_mode():
            return extract_logits(self.teacher(*inputs.args, **inputs.kwargs), role="teacher").float()

    def __call__(self, logits: Tensor, teacher_logits: Tensor | None, labels: Tensor | None) -> Tensor:
        loss = logits.new_zeros(())
        if teacher_logits is not None:
            loss = loss + self.kd_weight * self.kd(logits, teacher_logits, LossContext(temperature=self.temperature))
        if self.task_weight and labels is not None:
            loss = loss + self.task_weight * self.task(logits, labels, LossContext())
        return loss


def train_supernet(elastic: ElasticModel, *, teacher: nn.Module, loader: Any, space: SearchSpace,
                   section: SupernetSection, teacher_cache: TeacherCache | None = None,
                   store: SupernetStore, quiet: bool = False,
                   on_step: Callable[[int], None] | None = None) -> SupernetReport:
    """Train `elastic.model` in place by the sandwich rule (see the module docstring); resumes from
    the store's checkpoint. `on_step(step)` runs after each step and its checkpoint."""
    model = elastic.model
    device = next(model.parameters()).device
    total = section.steps_for(len(loader))
    optimizer = MaskedAdamW(list(model.named_parameters()), (section.optimizer or OptimizerSection()).spec())
    schedule = build_schedule(optimizer, (section.schedule or ScheduleSection()).spec(), total)
    grid = space_grid(space)
    ends = corners(grid, model.config, elastic.layout)
    adaptor = DataAdaptor()
    objective = _Objective(section, teacher, teacher_cache, adaptor)
    history: list[dict[str, float]] = []
    start = 0
    checkpoint = store.latest_checkpoint()
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        schedule.load_state_dict(checkpoint["schedule"])
        torch.set_rng_state(checkpoint["rng"])
        if checkpoint.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
        start, history = int(checkpoint["step"]), list(checkpoint["history"])
        log.info("supernet: resuming at step %d of %d from %s", start, total, store.checkpoint_path)
    else:
        torch.manual_seed(section.seed)
    teacher.eval()
    model.train()
    progress = Progress("supernet (sandwich)", total, quiet=quiet)
    started, cpu_started = time.perf_counter(), time.process_time()
    batches = _cycle(loader, start)
    log_every = max(1, total // 10)  # the loss per sub-network size, ten times a run
    try:
        for step in range(start + 1, total + 1):
            batch = to_device(next(batches), device)
            teacher_logits = objective.teacher_logits(batch, device)
            labels = adaptor.labels(batch)
            inputs = adaptor.student_inputs(batch, with_labels=False)
            subnets = sandwich(grid, model.config, elastic.layout, seed=section.seed, step=step,
                               random_subnets=section.random_subnets, ends=ends)
            optimizer.zero_grad(set_to_none=True)
            per_size: dict[str, list[float]] = {}
            for size, architecture in subnets:
                loss = objective(elastic.forward(architecture, **inputs.kwargs),
                                 teacher_logits, labels)
                (loss / len(subnets)).backward()
                per_size.setdefault(size, []).append(loss.item())
            means = {size: sum(v) / len(v) for size, v in per_size.items()}
            if not all(math.isfinite(v) for v in means.values()):  # before the step: the weights stay sound
                raise NonFiniteLossError("supernet (sandwich)", step, sum(means.values()), means)
            if section.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), section.max_grad_norm)
            optimizer.step(_masks(elastic, subnets))
            schedule.step()
            history.append(means)
            progress.update(sum(sum(v) for v in per_size.values()) / len(subnets))
            if step % section.checkpoint_every_steps == 0 and step < total:
                store.save_checkpoint({"step": step, "total_steps": total, "model": model.state_dict(),
                                       "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                                       "rng": torch.get_rng_state(), "history": history,
                                       "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                                       else None})
            if step % log_every == 0 or step == total:
                log.info("supernet step %d/%d: loss %s", step, total,
                         _format(_mean_losses(history[-log_every:])))
            if on_step is not None:
                on_step(step)
    finally:
        progress.close()
    model.eval()
    report = SupernetReport(steps=total, resumed_from=start, seconds=time.perf_counter() - started,
                            cpu_seconds=time.process_time() - cpu_started, losses=tuple(history))
    log.info("supernet trained: %d steps (from step %d) in %.0f s; last losses %s", total, start,
             report.seconds, _format(report.last_losses()))
    return report


def _format(losses: Mapping[str, float]) -> str:
    return ", ".join(f"{size} {value:.4f}" for size, value in losses.items())
