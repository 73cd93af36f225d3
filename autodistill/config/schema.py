"""The sections of a config file besides distillation: teacher, student, data, output.

    teacher: {model: path-or-hub-name, model_cls: AutoModelForSequenceClassification}
    student: {overrides: {num_hidden_layers: 2, hidden_size: 128}}   # or {model: path}
    data:    {train_file: train.csv, validation_file: dev.csv, max_length: 128}
    distillation: {...}                                            # see sections.py
    output_dir: runs/distill
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from autodistill.config.sections import DistillationSection, Section


class ModelSection(Section):
    """Seed 003's `model: {name, framework}` header; only PyTorch is supported."""

    name: str | None = None
    framework: Literal["pytorch"] = "pytorch"


class TeacherSection(Section):
    model: str
    model_cls: str = "AutoModelForSequenceClassification"
    name: str | None = None
    num_labels: Annotated[int, Field(ge=1)] | None = None
    attn_implementation: str | None = "eager"


class StudentSection(Section):
    """`model`: an initial student to load; else the teacher's config with `overrides`."""

    model: str | None = None
    model_cls: str | None = None
    overrides: dict[str, int | float | str | bool] = {}
    attn_implementation: str | None = "eager"

    @model_validator(mode="after")
    def _one_source(self) -> StudentSection:
        if self.model is not None and self.overrides:
            raise ValueError("give student.model (load a student) or student.overrides "
                             "(build one from the teacher's config), not both")
        return self


class DataSection(Section):
    train_file: str
    validation_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[str] | None = None
    tokenizer: str | None = None
    max_length: Annotated[int, Field(ge=2)] = 128
    batch_size: Annotated[int, Field(ge=1)] = 32
    eval_batch_size: Annotated[int, Field(ge=1)] = 64


class DistillRunConfig(Section):
    """`autodistill distill CONFIG.yaml`: one given student, no search."""

    model: ModelSection | None = None
    teacher: TeacherSection | None = None
    teachers: list[TeacherSection] | None = None
    student: StudentSection
    data: DataSection
    distillation: DistillationSection
    output_dir: str = "runs/distill"

    @model_validator(mode="after")
    def _teachers(self) -> DistillRunConfig:
        if (self.teacher is None) == (self.teachers is None):
            raise ValueError("give exactly one of teacher (one model) or teachers (a list)")
        return self

    @property
    def teacher_list(self) -> list[TeacherSection]:
        return [self.teacher] if self.teacher is not None else list(self.teachers or [])

    def with_overrides(self, **values: Any) -> DistillRunConfig:
        return self.model_copy(update={k: v for k, v in values.items() if v is not None})
