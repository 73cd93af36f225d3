"""User-facing configuration, validated once: the base section and the settings every
stage shares (optimiser, schedule, clipping, accumulation, temperature).

The stages themselves are in `stages.py`, the whole `distillation:` section in
`distillation.py`; all of them turn the seeds' vocabulary into the typed plan (`plan.py`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from autodistill.config.plan import OptimizerSpec, ScheduleSpec
from autodistill.errors import ConfigError
from autodistill.registry import Registry


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OptimizerSection(Section):
    name: str = "AdamW"
    learning_rate: Annotated[float, Field(gt=0)] = 5e-5
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    momentum: Annotated[float, Field(ge=0)] = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: Annotated[float, Field(gt=0)] = 1e-8

    @model_validator(mode="before")
    @classmethod
    def _seed_form(cls, raw: Any) -> Any:
        # seed 003: `optimizer: {SGD: {learning_rate: 0.001}}`
        if isinstance(raw, dict) and len(raw) == 1:
            (key, value), = raw.items()
            if isinstance(value, dict) and key not in cls.model_fields:
                return {"name": key, **value}
        if isinstance(raw, str):
            return {"name": raw}
        return raw

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from autodistill.distill.optimization import OPTIMIZERS

        return registered(OPTIMIZERS, name)

    def spec(self) -> OptimizerSpec:
        return OptimizerSpec(**self.model_dump())


class ScheduleSection(Section):
    name: str = "constant"
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.0
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.0

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, raw: Any) -> Any:
        return {"name": raw} if isinstance(raw, str) else raw

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from autodistill.distill.optimization import SCHEDULES

        return registered(SCHEDULES, name)

    def spec(self) -> ScheduleSpec:
        return ScheduleSpec(**self.model_dump())


def registered(registry: Registry[Any], name: str) -> str:
    """`name` if registered; else a ValueError listing the choices (pydantic adds the key)."""
    try:
        registry.get(name)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return name


def loss_name(name: str) -> str:
    from autodistill.losses.registry import LOSSES

    return registered(LOSSES, name)


class TrainingSection(Section):
    """Settings every stage shares unless it overrides them."""

    optimizer: OptimizerSection | None = None
    schedule: ScheduleSection | None = None
    gradient_accumulation_steps: Annotated[int, Field(ge=1)] | None = None
    max_grad_norm: Annotated[float, Field(gt=0)] | None = None
    temperature: Annotated[float, Field(gt=0)] | None = None
