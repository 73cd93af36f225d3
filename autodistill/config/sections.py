"""User-facing configuration, validated once: the base section and the settings every
stage shares (optimiser, schedule, clipping, accumulation, temperature).

The stages themselves are in `stages.py`, the whole `distillation:` section in
`distillation.py`; all of them turn the seeds' vocabulary into the typed plan (`plan.py`).
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from autodistill.config.plan import OptimizerSpec, ScheduleSpec
from autodistill.errors import ConfigError
from autodistill.registries import LOSSES, OPTIMIZERS, SCHEDULES
from autodistill.registry import Registry

# the largest value each kind of integer may take: the type it reaches downstream
INT_MAX = 2**31 - 1   # counts (steps, batch sizes, trials, seconds): a C int (torch, threads, timers)
SEED_MAX = 2**32 - 1  # seeds: numpy's and Optuna's samplers take [0, 2**32 - 1]
BoundedInt = Annotated[int, Field(le=INT_MAX)]
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
Weight = Annotated[float, Field(ge=0)]  # a loss's weight: a negative one trains to maximise it
Fraction = Annotated[float, Field(ge=0, lt=1)]


class Section(BaseModel):
    """Every config section: unknown keys refused, frozen, and every float finite (`.inf` and
    `.nan` are refused wherever a float is read, with the key that holds them)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    def overridden(self, **values: Any) -> Self:
        """This section with command-line values (None: not given) in place of its keys, checked by
        the rules of the keys themselves (`model_copy` checks nothing); an error names the flag."""
        given = {key: value for key, value in values.items() if value is not None}
        if not given:
            return self
        try:
            return self.model_validate({**self.model_dump(round_trip=True), **given})
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0]) if error["loc"] else next(iter(given))
            message = str(error["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"--{key.replace('_', '-')}: {message} (got {given.get(key, error.get('input'))!r}); "
                              f"it overrides the config's {key}") from None


class OptimizerSection(Section):
    name: str = "AdamW"
    learning_rate: Annotated[float, Field(gt=0)] = 5e-5
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    momentum: Annotated[float, Field(ge=0)] = 0.0
    betas: tuple[Fraction, Fraction] = (0.9, 0.999)
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
        return registered(OPTIMIZERS, name)

    def spec(self) -> OptimizerSpec:
        return OptimizerSpec(**self.model_dump())


class ScheduleSection(Section):
    name: str = "constant"
    warmup_steps: Annotated[BoundedInt, Field(ge=0)] = 0
    warmup_ratio: Fraction = 0.0
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.0

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, raw: Any) -> Any:
        return {"name": raw} if isinstance(raw, str) else raw

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return registered(SCHEDULES, name)

    def spec(self) -> ScheduleSpec:
        return ScheduleSpec(**self.model_dump())


def registered(registry: Registry[Any], name: str) -> str:
    """`name` if registered (its code is not imported); else a ValueError listing the choices
    (pydantic adds the key)."""
    try:
        return registry.check(name)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def loss_name(name: str) -> str:
    return registered(LOSSES, name)


class TrainingSection(Section):
    """Settings every stage shares unless it overrides them."""

    optimizer: OptimizerSection | None = None
    schedule: ScheduleSection | None = None
    gradient_accumulation_steps: Annotated[BoundedInt, Field(ge=1)] | None = None
    max_grad_norm: Annotated[float, Field(gt=0)] | None = None
    temperature: Annotated[float, Field(gt=0)] | None = None
