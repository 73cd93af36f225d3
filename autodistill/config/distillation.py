"""The `distillation:` section (and `auto_distillation:`'s training part): stages in order."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from autodistill.config.plan import DistillationPlan, Precision, Stage
from autodistill.config.sections import BoundedInt, Section, Seed, TrainingSection, Weight
from autodistill.config.stages import (
    FlashSection,
    FlashTemplateSection,
    SeedTrainSection,
    StageSection,
    flash_form,
    register_user_loss,
)


class LoggingSection(Section):
    """`logging:` what a run records besides its progress bars."""

    tensorboard: bool | str = False  # true: <output_dir>/tensorboard
    every_steps: Annotated[BoundedInt, Field(ge=1)] = 10

    @field_validator("tensorboard", mode="before")
    @classmethod
    def _true_or_folder(cls, tensorboard: Any) -> bool | str:
        # whether the tensorboard package is installed is asked at the edge (preflight.check_tensorboard)
        if not isinstance(tensorboard, bool) and not (isinstance(tensorboard, str) and tensorboard.strip()):
            raise ValueError("give true (the run's own folder), false, or a folder name")
        return tensorboard


class DistillationSection(TrainingSection):
    """`distillation:` in our configs, and `auto_distillation:`'s training part."""

    # the user's loss functions, {name: 'module:function'}: imported and registered before the
    # stages below are checked, so their loss_types may name them (fields validate in this order)
    losses: dict[str, str] = {}
    seed: Seed = 42
    device: str = "auto"
    teacher_weights: list[Weight] | None = None
    truncate_forward: bool = True
    progress: bool = True
    checkpoint_every_steps: Annotated[BoundedInt, Field(ge=0)] | None = 500
    precision_force: bool = False
    # whether it trains on this machine's device is asked at the edge (preflight.check_precision) and
    # by the Distiller
    precision: Precision = "fp32"
    eval_every_steps: Annotated[BoundedInt, Field(ge=0)] | None = None
    logging: LoggingSection | None = None
    flash_distillation: Annotated[
        Annotated[FlashSection, Tag("<blocks>")] | Annotated[FlashTemplateSection, Tag("<template>")],
        Discriminator(flash_form),
    ] | None = None
    regular_distillation: StageSection | None = None
    train: SeedTrainSection | None = None

    @model_validator(mode="before")
    @classmethod
    def _seed_knowledge_transfer(cls, raw: Any) -> Any:
        """Seed 003's Python dict nests the flash blocks under `flash_distillation.knowledge_transfer`
        and the regular stage under `flash_distillation.regular_distillation`: lifted to this level."""
        flash = raw.get("flash_distillation") if isinstance(raw, dict) else None
        if not isinstance(flash, dict) or "knowledge_transfer" not in flash:
            return raw
        rest = {k: v for k, v in flash.items() if k not in ("knowledge_transfer", "regular_distillation")}
        if rest:
            raise ValueError(f"flash_distillation holds knowledge_transfer, so its other keys {sorted(rest)} "
                             "belong inside flash_distillation.knowledge_transfer; move them there")
        raw = {**raw, "flash_distillation": flash["knowledge_transfer"]}
        if "regular_distillation" in flash:
            if "regular_distillation" in raw:
                raise ValueError("regular_distillation is given twice (at this level and inside "
                                 "flash_distillation); keep one of them")
            raw["regular_distillation"] = flash["regular_distillation"]
        return raw

    @field_validator("losses")
    @classmethod
    def _user_losses(cls, losses: dict[str, str]) -> dict[str, str]:
        for name, spec in losses.items():
            register_user_loss(name, spec, key=name)
        return losses

    @model_validator(mode="after")
    def _some_stage(self) -> DistillationSection:
        if self.train is not None and self.regular_distillation is not None:
            raise ValueError("give regular_distillation or train.criterion, not both")
        if self.flash_distillation is None and self.regular_distillation is None and self.train is None:
            raise ValueError("give flash_distillation, regular_distillation, or both")
        return self

    @property
    def depends_on_depth(self) -> bool:
        return isinstance(self.flash_distillation, FlashTemplateSection)

    def plan(self, *, student_layers: int | None = None, teacher_layers: int | None = None
             ) -> DistillationPlan:
        """The plan to run; a templated flash stage needs the student's and teacher's depth."""
        stages: list[Stage] = []
        if isinstance(self.flash_distillation, FlashTemplateSection):
            stages += self.flash_distillation.stages(self, student_layers=student_layers,
                                                     teacher_layers=teacher_layers)
        elif self.flash_distillation is not None:
            stages += self.flash_distillation.stages(self)
        regular = self.train.stage_section() if self.train is not None else self.regular_distillation
        if regular is not None:
            stages.append(regular.stage(name="regular", kind="regular", defaults=self))
        return DistillationPlan(
            stages=tuple(s for s in stages if s.train_steps != 0),
            seed=self.seed, device=self.device,
            teacher_weights=tuple(self.teacher_weights) if self.teacher_weights else None,
            truncate_forward=self.truncate_forward, progress=self.progress,
            checkpoint_every_steps=self.checkpoint_every_steps or 0,
            precision=self.precision, precision_force=self.precision_force,
            eval_every_steps=self.eval_every_steps or 0,
            tensorboard=self.logging.tensorboard if self.logging is not None else False,
            log_every_steps=self.logging.every_steps if self.logging is not None else 10,
        )
