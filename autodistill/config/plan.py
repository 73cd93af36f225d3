"""The typed distillation plan the engine runs: frozen records, no raw dicts.

The YAML sections (`autodistill.config.sections`) and the Python API both end up
here. A plan is an ordered list of stages (torchdistill's multi-stage idea):
flash distillation contributes one stage per block, regular distillation one more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OutputIndex = tuple[int | str, ...]
MatcherKind = Literal["auto", "linear", "conv1x1", "head_mean", "none"]
Precision = Literal["fp32", "bf16", "fp16"]


def format_index(index: OutputIndex) -> str:
    return ".".join(str(i) for i in index)


@dataclass(frozen=True)
class LayerMapping:
    """One intermediate-layer match (TextBrewer's IntermediateMatch, seed 003's tuple).

    `student`/`teacher` are dotted module paths; the indices pick an element of the
    module's output (nested tuples, or a key of a dict-like output). `teacher_name`
    limits the mapping to one teacher when there are several (None: every teacher).
    """

    student: str
    teacher: str
    student_index: OutputIndex = ()
    teacher_index: OutputIndex = ()
    loss: str = "MSE"
    weight: float = 1.0
    matcher: MatcherKind = "auto"
    teacher_name: str | None = None

    @property
    def name(self) -> str:
        s = self.student + (f"[{format_index(self.student_index)}]" if self.student_index else "")
        t = self.teacher + (f"[{format_index(self.teacher_index)}]" if self.teacher_index else "")
        return f"{s} <- {t}"


@dataclass(frozen=True)
class LogitKD:
    """Logit knowledge distillation (Hinton): [teacher-student, student-target] terms."""

    temperature: float = 1.0
    loss_types: tuple[str, str] = ("CE", "CE")
    loss_weights: tuple[float, float] = (0.5, 0.5)


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "AdamW"
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    momentum: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


@dataclass(frozen=True)
class ScheduleSpec:
    name: str = "constant"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    min_lr_ratio: float = 0.0

    def warmup_for(self, total_steps: int) -> int:
        return self.warmup_steps or int(round(self.warmup_ratio * total_steps))


@dataclass(frozen=True)
class Stage:
    """One training stage: what is trained, against what, for how long, with what optimiser.

    `trainable` holds exact module prefixes of the student to train (None: all of it);
    flash distillation makes one stage per block with that block's prefix.
    `train_steps` counts optimiser steps; `epochs` is resolved against the loader
    length when `train_steps` is None.
    """

    name: str
    kind: Literal["flash", "regular"]
    train_steps: int | None = None
    epochs: float | None = None
    trainable: tuple[str, ...] | None = None
    mappings: tuple[LayerMapping, ...] = ()
    logit_kd: LogitKD | None = None
    add_origin_loss: bool = False
    origin_loss_weight: float = 1.0
    temperature: float = 1.0
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = None

    @property
    def needs_model_output(self) -> bool:
        """True when the stage reads logits or the model's own loss, not only features."""
        return self.logit_kd is not None or self.add_origin_loss

    @property
    def needs_teacher(self) -> bool:
        return bool(self.mappings) or (
            self.logit_kd is not None and self.logit_kd.loss_weights[0] != 0
        )

    def steps_for(self, batches_per_epoch: int | None) -> int:
        if self.train_steps is not None:
            return self.train_steps
        if batches_per_epoch is None:
            from autodistill.errors import ConfigError

            raise ConfigError(
                f"stage '{self.name}' gives epochs but the train loader has no length; "
                "give train_steps instead"
            )
        per_epoch = max(1, batches_per_epoch // self.gradient_accumulation_steps)
        return max(1, int(round((self.epochs or 1.0) * per_epoch)))


@dataclass(frozen=True)
class DistillationPlan:
    """Everything `Distiller.fit` needs besides models and data."""

    stages: tuple[Stage, ...]
    seed: int = 42
    device: str = "auto"
    teacher_weights: tuple[float, ...] | None = None
    truncate_forward: bool = True
    progress: bool = True
    checkpoint_every_steps: int = 500  # 0: checkpoints at stage ends only (where a folder is given)
    precision: Precision = "fp32"
    precision_force: bool = False  # run bf16 on a CPU without bf16 hardware anyway
    eval_every_steps: int = 0  # 0: evaluate (where evaluation sets are given) at stage ends only
    tensorboard: bool | str = False  # a folder, or True: the run's own (Distiller.fit's log_dir)
    log_every_steps: int = 10  # TensorBoard scalars every this many steps
