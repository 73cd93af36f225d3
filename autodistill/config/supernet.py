"""`auto_distillation.supernet:` the settings of a weight-sharing search (`search.strategy: supernet`).

    supernet: {epochs: 3, random_subnets: 2, final_trials: 4, proxy_trials: 200, proxy_fine_tune_steps: 0,
               proxy_head: refit}

Training settings left out (`optimizer`, `schedule`, `temperature`, `loss_weights`,
`max_grad_norm`) are the regular distillation's: `AutoDistillationSection` fills them in
once, when the config is read, so the supernet's content key sees the values it trains with.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from autodistill.config.distillation import DistillationSection
from autodistill.config.sections import (
    BoundedInt,
    OptimizerSection,
    ScheduleSection,
    Section,
    Seed,
    Weight,
)

# the masked update (autodistill.supernet.masked_adamw) is AdamW's: entries no sub-network used
# in a step keep their value and moments, which a stock optimizer cannot express
SUPERNET_OPTIMIZERS = ("AdamW",)
# `refit` fits a linear classifier on what the classification head reads: a sequence-level class task's
REFIT_TASKS = ("sequence_classification",)
# the supernet's sandwich trains with KL on one class distribution per text plus cross-entropy
# (supernet/training.py) and slices a sequence classifier's head (supernet/elastic.py)
SUPERNET_TASKS = ("sequence_classification",)


def strategy_refusal(task: str) -> str | None:
    """Why `search.strategy: supernet` cannot search `task` (None: it can)."""
    if task in SUPERNET_TASKS:
        return None
    return (f"search.strategy: supernet trains and slices sequence classifiers (KD on one class "
            f"distribution per text plus cross-entropy), but the task is {task}; set "
            "search.strategy: per_trial")


class SupernetSection(Section):
    """One elastic network trained once by the sandwich rule, then sliced to score architectures.

    `train_steps` or `epochs` (default 3 epochs) counts optimizer steps; each step trains the
    largest, the smallest and `random_subnets` sampled sub-networks. `importance_batches`
    training batches rank the teacher's heads and FFN neurons first. `proxy_trials`
    architectures are scored by slicing, each first trained `proxy_fine_tune_steps` steps of the
    regular distillation (0: scored as sliced), and scored by `proxy_head`: `refit` (the
    default), a linear classifier fitted on the features the slice's classifier reads over the
    first training examples (the same for every architecture; sequence_classification only), or
    `sliced`, the slice's own classifier (the default with `evaluation.deployment`, whose graph is
    scored as it ships); at most `final_trials` of their Pareto front are
    trained in full. A checkpoint every `checkpoint_every_steps` lets a killed run resume.
    """

    train_steps: Annotated[BoundedInt, Field(ge=1)] | None = None
    epochs: Annotated[float, Field(gt=0, le=1000)] | None = None
    random_subnets: Annotated[int, Field(ge=0, le=16)] = 2
    optimizer: OptimizerSection | None = None
    schedule: ScheduleSection | None = None
    temperature: Annotated[float, Field(gt=0, le=100)] | None = None
    loss_weights: tuple[Weight, Weight] | None = None
    max_grad_norm: Annotated[float, Field(gt=0)] | None = None
    importance_batches: Annotated[int, Field(ge=1, le=10_000)] = 8
    checkpoint_every_steps: Annotated[BoundedInt, Field(ge=1)] = 200
    final_trials: Annotated[int, Field(ge=1, le=10_000)] = 4
    proxy_trials: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    proxy_fine_tune_steps: Annotated[int, Field(ge=0, le=10_000)] = 0
    proxy_head: Literal["sliced", "refit"] = "refit"
    seed: Seed = 0

    @field_validator("optimizer")
    @classmethod
    def _masked(cls, optimizer: OptimizerSection | None) -> OptimizerSection | None:
        if optimizer is not None and optimizer.name not in SUPERNET_OPTIMIZERS:
            raise ValueError(f"the supernet trains with a masked AdamW (sub-networks leave other entries "
                             f"untouched), got optimizer {optimizer.name!r}; set supernet.optimizer.name: AdamW")
        return optimizer

    @model_validator(mode="after")
    def _one_length(self) -> SupernetSection:
        if self.train_steps is not None and self.epochs is not None:
            raise ValueError("give supernet.train_steps or supernet.epochs, not both")
        if self.loss_weights is not None and not any(self.loss_weights):
            raise ValueError(f"supernet.loss_weights [teacher KD, task] must not both be 0, "
                             f"got {list(self.loss_weights)}")
        return self

    def key_settings(self) -> dict[str, object]:
        """The settings the supernet's weights depend on (for its content key): all but the search's
        budgets, the proxies' fine-tune and scoring and the checkpoint interval, so changing
        `proxy_trials`, `final_trials`, `proxy_fine_tune_steps` or `proxy_head` reuses it."""
        return self.model_dump(mode="json", exclude={"proxy_trials", "final_trials", "proxy_fine_tune_steps",
                                                     "proxy_head", "checkpoint_every_steps"})

    def check_task(self, task: str) -> None:
        """A ValueError when a `proxy_head` the config names cannot score proxies of `task` (the
        default is not checked: only sequence classification has proxies at all)."""
        if "proxy_head" in self.model_fields_set and self.proxy_head == "refit" and task not in REFIT_TASKS:
            raise ValueError(f"supernet.proxy_head: refit fits a linear classifier on one label per text "
                             f"({', '.join(REFIT_TASKS)} only), but the task is {task}; set "
                             "supernet.proxy_head: sliced")

    def steps_for(self, batches_per_epoch: int) -> int:
        """Optimizer steps: `train_steps`, else `epochs` (default 3) over the loader."""
        if self.train_steps is not None:
            return self.train_steps
        return max(1, round((self.epochs or 3.0) * batches_per_epoch))

    def with_defaults(self, distillation: DistillationSection) -> SupernetSection:
        """This section with every training setting it leaves out taken from the regular
        distillation (its optimizer's values under the masked AdamW, schedule, temperature,
        logit-KD weights, clipping)."""
        regular = distillation.train.stage_section() if distillation.train is not None \
            else distillation.regular_distillation
        if self.proxy_fine_tune_steps and regular is None:
            raise ValueError(f"supernet.proxy_fine_tune_steps {self.proxy_fine_tune_steps} trains each proxy by "
                             "the regular distillation, but this config has none; add regular_distillation "
                             "or set supernet.proxy_fine_tune_steps: 0")
        stage = regular or distillation
        optimizer = self.optimizer or stage.optimizer or distillation.optimizer
        kd_weights = (tuple(regular.loss_weights) if regular is not None and not regular.layer_mappings
                      and regular.loss_weights else None)
        update = {
            "optimizer": None if optimizer is None else optimizer.model_copy(update={"name": "AdamW"}),
            "schedule": self.schedule or stage.schedule or distillation.schedule,
            "temperature": self.temperature or stage.temperature or distillation.temperature,
            "loss_weights": self.loss_weights or kd_weights,
            "max_grad_norm": self.max_grad_norm or stage.max_grad_norm or distillation.max_grad_norm,
        }
        return self.model_copy(update=update)
