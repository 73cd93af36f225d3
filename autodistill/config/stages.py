"""Stages in the seeds' vocabulary: layer mappings, a stage's losses, flash distillation
(per-block lists, or a template that follows the student's depth), and seed 003's
one-stage `train: {optimizer, criterion}` form.

Accepts what users of Intel's distillation and AutoDistillation already write
(`layer_mappings_for_knowledge_transfer`, `loss_types`, `loss_weights`,
`add_origin_loss`, `train_steps` per block, `temperature`) and builds `Stage` records.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import AliasChoices, Field, field_validator, model_validator

from autodistill.config.callables import import_callable
from autodistill.config.plan import LayerMapping, LogitKD, MatcherKind, Stage
from autodistill.config.sections import (
    INT_MAX,
    BoundedInt,
    OptimizerSection,
    ScheduleSection,
    Section,
    TrainingSection,
    Weight,
    loss_name,
)
from autodistill.errors import ConfigError
from autodistill.registries import LOSSES

USER_LOSS_SEPARATOR = ":"  # a loss type written 'module:function' is the user's function, imported
_INDEX = re.compile(r"^-?\d+(\.-?\d+)*$")
# an element of a module's output: a position (negative counts from the end) or a key
OutputIndex = tuple[Annotated[int, Field(ge=-INT_MAX, le=INT_MAX)] | str, ...]


def parse_index(raw: Any) -> tuple[int | str, ...]:
    """'1' -> (1,), '1.0' -> (1, 0), 2 -> (2,), '' or None -> (), 'logits' -> ('logits',)."""
    if raw is None or raw == "":
        return ()
    if isinstance(raw, bool):
        raise ValueError(f"output index must be an int or a string like '1' or '1.0', got {raw!r}")
    if isinstance(raw, int):
        return (raw,)
    if isinstance(raw, (list, tuple)):
        return tuple(i for part in raw for i in parse_index(part))
    if isinstance(raw, str):
        text = raw.strip()
        if _INDEX.match(text):
            return tuple(int(p) for p in text.split("."))
        return tuple(int(p) if _INDEX.match(p) else p for p in text.split("."))
    raise ValueError(f"output index must be an int or a string like '1' or '1.0', got {raw!r}")


def register_user_loss(name: str, spec: str, *, key: str) -> str:
    """Import `spec` ('module:function', a feature loss `fn(student, teacher, context)`) and
    register it as loss type `name`, before any loss_types entry is checked; loading the same
    config again is a no-op. A ValueError starting with `key` (pydantic adds the config key before
    it) when it cannot be imported or `name` is taken by another loss."""
    try:
        function = import_callable(spec, key=key)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if name in LOSSES:
        if LOSSES.get(name) is not function:
            raise ValueError(f"{key}: loss type {name!r} is already registered (a built-in or another "
                             f"function); give {spec!r} another name")
        return name
    LOSSES.register(name, function)
    return name


def user_loss_name(name: str) -> str:
    """A registered loss type, or 'module:function' (imported and registered under that name)."""
    if USER_LOSS_SEPARATOR in name:
        register_user_loss(name, name, key=f"loss type {name!r}")
    return loss_name(name)


def loss_type_names(names: list[str] | None) -> list[str] | None:
    """A stage's `loss_types`, each a `user_loss_name` (the validator of every section that has them)."""
    return None if names is None else [user_loss_name(n) for n in names]


def _looks_like_index(value: Any) -> bool:
    return value is None or isinstance(value, int) or (
        isinstance(value, str) and (value == "" or bool(_INDEX.match(value.strip())))
    )


class MappingSection(Section):
    """One layer mapping; the seeds' list form `[student, (index), teacher, (index)]` or a mapping."""

    student: str
    teacher: str
    student_index: Annotated[OutputIndex, Field(default=())]
    teacher_index: Annotated[OutputIndex, Field(default=())]
    loss: str | None = None
    weight: Weight | None = None
    matcher: str = "auto"
    teacher_name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, raw: Any) -> Any:
        if not isinstance(raw, (list, tuple)):
            return raw
        items = list(raw)
        if not all(isinstance(i, (str, int)) for i in items) or not 2 <= len(items) <= 4:
            raise ValueError(
                "a layer mapping list is [student_layer, teacher_layer] or "
                f"[student_layer, 'index', teacher_layer, 'index'], got {raw!r}"
            )
        if len(items) == 2:
            return {"student": items[0], "teacher": items[1]}
        if len(items) == 4:
            return {"student": items[0], "student_index": items[1],
                    "teacher": items[2], "teacher_index": items[3]}
        if _looks_like_index(items[1]):
            return {"student": items[0], "student_index": items[1], "teacher": items[2]}
        return {"student": items[0], "teacher": items[1], "teacher_index": items[2]}

    @field_validator("student_index", "teacher_index", mode="before")
    @classmethod
    def _index(cls, raw: Any) -> tuple[int | str, ...]:
        return parse_index(raw)

    @field_validator("loss")
    @classmethod
    def _loss(cls, name: str | None) -> str | None:
        return None if name is None else user_loss_name(name)

    @field_validator("matcher")
    @classmethod
    def _matcher(cls, raw: str) -> str:
        allowed = get_args(MatcherKind)
        if raw not in allowed:
            raise ValueError(f"matcher must be one of {', '.join(allowed)}, got {raw!r}")
        return raw


def _is_block(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, (list, tuple, dict)) for m in value
    )


def _unwrap_block_nesting(key: str, value: Any) -> Any:
    """Regular distillation also takes seed 003's one-block nesting: `[[...]]`, `[True]`, `[25000]`."""
    if not isinstance(value, list) or len(value) != 1:
        return value
    if key in ("layer_mappings_for_knowledge_transfer", "layer_mappings"):
        return value[0] if _is_block(value[0]) else value
    if key in ("loss_types", "loss_weights"):
        return value[0] if isinstance(value[0], list) else value
    return value[0]  # add_origin_loss, train_steps


def _check_some_weight(mappings: list[MappingSection], loss_weights: list[float] | None, *,
                       origin: bool, origin_weight: float = 1.0, where: str = "") -> None:
    """A stage whose every loss has weight 0 trains nothing: refused (the weights as `stage()`
    resolves them: a mapping's own weight, else loss_weights, else 1/n; logit KD's [0.5, 0.5])."""
    if origin and origin_weight > 0:
        return
    if mappings:
        weights = [m.weight if m.weight is not None else (loss_weights[i] if loss_weights else 1.0)
                   for i, m in enumerate(mappings)]
    else:
        weights = list(loss_weights or (0.5, 0.5))
    if not any(weights):
        raise ValueError(f"{where}every loss weight is 0 ({weights}), so the stage would train nothing; "
                         "give some loss a weight above 0 (or add_origin_loss: true)")


class StageSection(TrainingSection):
    """A stage in the seeds' vocabulary. Mappings given: intermediate-layer loss; none: logit KD."""

    layer_mappings: Annotated[
        list[MappingSection], Field(alias="layer_mappings_for_knowledge_transfer")
    ] = []
    loss_types: list[str] | None = None
    loss_weights: list[Weight] | None = None
    add_origin_loss: bool = False
    origin_loss_weight: Weight = 1.0
    train_steps: Annotated[BoundedInt, Field(ge=0)] | None = None
    epochs: Annotated[float, Field(gt=0)] | None = None
    trainable: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _seed_nesting(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        for key in ("layer_mappings_for_knowledge_transfer", "layer_mappings",
                    "loss_types", "loss_weights", "add_origin_loss", "train_steps"):
            if key in raw:
                raw[key] = _unwrap_block_nesting(key, raw[key])
        if "loss_types" in raw and isinstance(raw["loss_types"], str):
            raw["loss_types"] = [raw["loss_types"]]
        if "loss_weights" in raw and isinstance(raw["loss_weights"], (int, float)):
            raw["loss_weights"] = [raw["loss_weights"]]
        return raw

    _losses = field_validator("loss_types")(loss_type_names)

    @model_validator(mode="after")
    def _lengths(self) -> StageSection:
        if self.layer_mappings:
            n = len(self.layer_mappings)
            for key in ("loss_types", "loss_weights"):
                value = getattr(self, key)
                if value is not None and len(value) != n:
                    raise ValueError(
                        f"{key} has {len(value)} entries but there are {n} layer mappings; "
                        f"give one per mapping"
                    )
        else:
            for key in ("loss_types", "loss_weights"):
                value = getattr(self, key)
                if value is not None and len(value) != 2:
                    raise ValueError(
                        f"{key} for logit distillation needs 2 entries "
                        f"[teacher-student, student-target], got {len(value)}"
                    )
        if self.train_steps is not None and self.epochs is not None:
            raise ValueError("give train_steps or epochs, not both")
        _check_some_weight(self.layer_mappings, self.loss_weights, origin=self.add_origin_loss,
                           origin_weight=self.origin_loss_weight)
        return self

    def stage(self, *, name: str, kind: Literal["flash", "regular"], defaults: TrainingSection,
              trainable: tuple[str, ...] | None = None) -> Stage:
        temperature = self.temperature or defaults.temperature or 1.0
        mappings: list[LayerMapping] = []
        n = len(self.layer_mappings)
        for i, m in enumerate(self.layer_mappings):
            loss = m.loss or (self.loss_types[i] if self.loss_types else "MSE")
            weight = m.weight if m.weight is not None else (
                self.loss_weights[i] if self.loss_weights else 1.0 / n
            )
            mappings.append(LayerMapping(
                student=m.student, teacher=m.teacher, student_index=m.student_index,
                teacher_index=m.teacher_index, loss=loss, weight=weight,
                matcher=m.matcher, teacher_name=m.teacher_name,  # type: ignore[arg-type]
            ))
        logit_kd = None
        if not mappings:
            logit_kd = LogitKD(
                temperature=temperature,
                loss_types=tuple(self.loss_types or ("CE", "CE")),  # type: ignore[arg-type]
                loss_weights=tuple(self.loss_weights or (0.5, 0.5)),  # type: ignore[arg-type]
            )
        optimizer = self.optimizer or defaults.optimizer or OptimizerSection()
        schedule = self.schedule or defaults.schedule or ScheduleSection()
        return Stage(
            name=name, kind=kind,
            train_steps=self.train_steps,
            epochs=self.epochs if self.train_steps is None else None,
            trainable=tuple(self.trainable) if self.trainable is not None else trainable,
            mappings=tuple(mappings), logit_kd=logit_kd,
            add_origin_loss=self.add_origin_loss, origin_loss_weight=self.origin_loss_weight,
            temperature=temperature, optimizer=optimizer.spec(), schedule=schedule.spec(),
            gradient_accumulation_steps=(self.gradient_accumulation_steps
                                         or defaults.gradient_accumulation_steps or 1),
            max_grad_norm=self.max_grad_norm or defaults.max_grad_norm,
        )


class FlashSection(TrainingSection):
    """Flash distillation: block i trains for train_steps[i] against its own mappings."""

    block_names: list[str]
    layer_mappings: Annotated[
        list[list[MappingSection]], Field(alias="layer_mappings_for_knowledge_transfer")
    ]
    loss_types: list[list[str]] | None = None
    loss_weights: list[list[Weight]] | None = None
    add_origin_loss: list[bool] | bool = False
    # none (seed 003's OOB dict gives none): each block trains as a stage without a length does
    # (one epoch; under DistillationTrainer, TrainingArguments' max_steps or num_train_epochs)
    train_steps: list[Annotated[BoundedInt, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _per_block(self) -> FlashSection:
        n = len(self.block_names)
        if n == 0:
            raise ValueError("block_names is empty; name at least one student block to train")
        for key in ("layer_mappings", "train_steps", "loss_types", "loss_weights", "add_origin_loss"):
            value = getattr(self, key)
            if isinstance(value, list) and len(value) != n:
                field_name = "layer_mappings_for_knowledge_transfer" if key == "layer_mappings" else key
                raise ValueError(
                    f"{field_name} has {len(value)} entries but block_names has {n}; "
                    "give one entry per block"
                )
        for i, block in enumerate(self.layer_mappings):
            if not block:
                raise ValueError(f"block {i} ({self.block_names[i]}) has no layer mappings")
            for key in ("loss_types", "loss_weights"):
                value = getattr(self, key)
                if value is not None and len(value[i]) != len(block):
                    raise ValueError(
                        f"{key}[{i}] has {len(value[i])} entries but block {i} "
                        f"({self.block_names[i]}) has {len(block)} layer mappings"
                    )
            origin = self.add_origin_loss[i] if isinstance(self.add_origin_loss, list) else self.add_origin_loss
            _check_some_weight(block, self.loss_weights[i] if self.loss_weights else None, origin=origin,
                               where=f"block {i} ({self.block_names[i]}): ")
        return self

    @field_validator("loss_types")
    @classmethod
    def _losses(cls, names: list[list[str]] | None) -> list[list[str]] | None:
        return None if names is None else [[user_loss_name(n) for n in block] for block in names]

    def stages(self, defaults: TrainingSection) -> list[Stage]:
        shared = TrainingSection(
            optimizer=self.optimizer or defaults.optimizer,
            schedule=self.schedule or defaults.schedule,
            gradient_accumulation_steps=self.gradient_accumulation_steps
            or defaults.gradient_accumulation_steps,
            max_grad_norm=self.max_grad_norm or defaults.max_grad_norm,
            temperature=self.temperature or defaults.temperature,
        )
        out = []
        for i, block in enumerate(self.block_names):
            origin = (self.add_origin_loss[i] if isinstance(self.add_origin_loss, list)
                      else self.add_origin_loss)
            section = StageSection(
                layer_mappings=self.layer_mappings[i],
                loss_types=self.loss_types[i] if self.loss_types else None,
                loss_weights=self.loss_weights[i] if self.loss_weights else None,
                add_origin_loss=origin, train_steps=self.train_steps[i] if self.train_steps is not None else None,
            )
            out.append(section.stage(name=f"flash[{i}]:{block}", kind="flash",
                                     defaults=shared, trainable=(block,)))
        return out


class CriterionSection(Section):
    """Seed 000/003's `criterion:` with exactly one loss class named."""

    KnowledgeDistillationLoss: Annotated[
        StageSection | None, Field(validation_alias=AliasChoices("KnowledgeDistillationLoss", "KnowledgeLoss"))
    ] = None
    IntermediateLayersKnowledgeDistillationLoss: Annotated[
        StageSection | None,
        Field(validation_alias=AliasChoices("IntermediateLayersKnowledgeDistillationLoss",
                                            "IntermediateLayersLoss")),
    ] = None

    @model_validator(mode="after")
    def _one(self) -> CriterionSection:
        given = [s for s in (self.KnowledgeDistillationLoss,
                             self.IntermediateLayersKnowledgeDistillationLoss) if s is not None]
        if len(given) != 1:
            raise ValueError("name exactly one of KnowledgeDistillationLoss, "
                             "IntermediateLayersKnowledgeDistillationLoss")
        return self

    @property
    def section(self) -> StageSection:
        section = self.KnowledgeDistillationLoss or self.IntermediateLayersKnowledgeDistillationLoss
        assert section is not None  # the validator above asks for exactly one
        return section


class SeedTrainSection(TrainingSection):
    """Seed 003's one-stage `distillation: {train: {optimizer: ..., criterion: ...}}`."""

    criterion: CriterionSection
    train_steps: Annotated[BoundedInt, Field(ge=1)] | None = None
    epoch: Annotated[float, Field(gt=0)] | None = None

    def stage_section(self) -> StageSection:
        base = self.criterion.section
        update: dict[str, Any] = {
            k: v for k, v in {
                "optimizer": self.optimizer, "schedule": self.schedule,
                "gradient_accumulation_steps": self.gradient_accumulation_steps,
                "max_grad_norm": self.max_grad_norm, "temperature": self.temperature,
                "train_steps": self.train_steps, "epochs": self.epoch,
            }.items() if v is not None and getattr(base, k) is None
        }
        return base.model_copy(update=update)


def teacher_layer_for(student_layer: int, student_layers: int, teacher_layers: int) -> int:
    """Student layer i (0-based) learns from teacher layer round((i + 1) * T / S) - 1, evenly spread."""
    return max(0, math.floor((student_layer + 1) * teacher_layers / student_layers + 0.5) - 1)


def _check_placeholders(template: str, allowed: tuple[str, ...], what: str) -> None:
    """`template` formats with just the `allowed` placeholders (as `stages()` will format it)."""
    try:
        template.format(**{name: 0 for name in allowed})
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        names = " and ".join("{" + name + "}" for name in allowed)
        raise ValueError(f"{what} {template!r} may use only the placeholders {names} "
                         f"(a literal brace is written {{{{ or }}}}): {type(exc).__name__} {exc}") from None


class FlashTemplateSection(TrainingSection):
    """Flash distillation whose blocks follow the student's depth, for searches over depth.

    `block_names` is a template such as `bert.encoder.layer.{i}`; mapping paths may use `{i}`
    (the student layer) and `{t}` (the teacher layer it learns from, spread evenly).
    """

    block_names: str
    layer_mappings: Annotated[
        list[MappingSection], Field(alias="layer_mappings_for_knowledge_transfer", min_length=1)
    ]
    loss_types: list[str] | None = None
    loss_weights: list[Weight] | None = None
    add_origin_loss: bool = False
    train_steps: Annotated[BoundedInt, Field(ge=0)] | None = None  # none: as FlashSection's
    depth_key: str = "num_hidden_layers"

    @field_validator("block_names")
    @classmethod
    def _template(cls, name: str) -> str:
        if "{i}" not in name:
            raise ValueError(f"a block_names template must contain '{{i}}', got {name!r}")
        _check_placeholders(name, ("i",), "block_names")
        return name

    _losses = field_validator("loss_types")(loss_type_names)

    @model_validator(mode="after")
    def _lengths(self) -> FlashTemplateSection:
        for mapping in self.layer_mappings:
            for path in (mapping.student, mapping.teacher):
                _check_placeholders(path, ("i", "t"), "a layer mapping path")
        for key in ("loss_types", "loss_weights"):
            value = getattr(self, key)
            if value is not None and len(value) != len(self.layer_mappings):
                raise ValueError(f"{key} has {len(value)} entries but there are "
                                 f"{len(self.layer_mappings)} layer mappings per block")
        _check_some_weight(self.layer_mappings, self.loss_weights, origin=self.add_origin_loss)
        return self

    def stages(self, defaults: TrainingSection, *, student_layers: int | None,
               teacher_layers: int | None) -> list[Stage]:
        return self.expanded(student_layers=student_layers, teacher_layers=teacher_layers).stages(defaults)

    def expanded(self, *, student_layers: int | None, teacher_layers: int | None) -> FlashSection:
        """The per-block section this template stands for, for a student and a teacher of these depths."""
        if not student_layers or not teacher_layers:
            raise ConfigError(
                f"flash_distillation.block_names is a template ({self.block_names!r}); expanding it "
                f"needs the student's and the teacher's depth ({self.depth_key})"
            )
        blocks = []
        for i in range(student_layers):
            t = teacher_layer_for(i, student_layers, teacher_layers)
            blocks.append([m.model_copy(update={"student": m.student.format(i=i, t=t),
                                                "teacher": m.teacher.format(i=i, t=t)})
                           for m in self.layer_mappings])
        return FlashSection(
            block_names=[self.block_names.format(i=i) for i in range(student_layers)],
            layer_mappings=blocks,
            loss_types=[self.loss_types] * student_layers if self.loss_types else None,
            loss_weights=[self.loss_weights] * student_layers if self.loss_weights else None,
            add_origin_loss=self.add_origin_loss,
            train_steps=None if self.train_steps is None else [self.train_steps] * student_layers,
            optimizer=self.optimizer, schedule=self.schedule,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            max_grad_norm=self.max_grad_norm, temperature=self.temperature,
        )


def flash_form(raw: Any) -> str:
    names = raw.get("block_names") if isinstance(raw, dict) else getattr(raw, "block_names", None)
    return "<template>" if isinstance(names, str) else "<blocks>"
