"""Check a distillation plan against real models on one batch, before any training step.

One forward pass of the student and of each teacher (no gradients, eval mode)
resolves every module path and output index, learns each feature's shape, creates
the matchers that bridge widths (before the optimiser exists, so they get trained),
detects which features are already probability distributions (attention maps),
checks that labels and logits exist where a loss needs them, and evaluates each
stage's loss once. Every problem is raised here, naming the stage and mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from autodistill.capture import FeatureCapture
from autodistill.config.plan import DistillationPlan, LayerMapping, Stage
from autodistill.config.tokenizers import mapping_refusal
from autodistill.data.adaptor import DataAdaptor
from autodistill.distill.freezing import select_parameters
from autodistill.errors import AutodistillError, ConfigError, MappingError
from autodistill.losses.logits import extract_logits, extract_own_loss
from autodistill.losses.matchers import FeatureMatchers, choose_matcher, matcher_key
from autodistill.losses.stage_loss import ResolvedMapping, StageLoss
from autodistill.modes import model_modes


def is_distribution(x: torch.Tensor) -> bool:
    """True when `x` is non-negative and sums to 1 along its last dimension (e.g. attention maps)."""
    if x.numel() == 0 or x.dim() < 2 or not x.dtype.is_floating_point:
        return False
    return bool(x.min() >= 0) and bool(((x.float().sum(-1) - 1).abs() < 1e-3).all())


def teachers_for(mapping: LayerMapping, names: Sequence[str], stage: Stage) -> list[int]:
    if mapping.teacher_name is None:
        return list(range(len(names)))
    if mapping.teacher_name not in names:
        raise ConfigError(
            f"stage '{stage.name}', mapping '{mapping.name}': teacher_name "
            f"{mapping.teacher_name!r} is not a teacher; teachers: {', '.join(names)}"
        )
    return [list(names).index(mapping.teacher_name)]


def paths_per_teacher(pairs: Iterable[tuple[int, str]], n_teachers: int) -> list[list[str]]:
    """The module paths each teacher's capture hooks, from (teacher index, path) pairs, in order."""
    paths: list[list[str]] = [[] for _ in range(n_teachers)]
    for i, path in pairs:
        paths[i].append(path)
    return paths


def _require_labels(stages: Sequence[Stage], labels: torch.Tensor | None) -> None:
    """A stage with a task loss (add_origin_loss, or a student-target weight) needs labels."""
    which = next((s.name for s in stages if s.add_origin_loss or (s.logit_kd and s.logit_kd.loss_weights[1])),
                 None)
    if which is not None and labels is None:
        raise MappingError(
            f"stage '{which}' needs labels (add_origin_loss or a student-target loss weight "
            "> 0) but the batches have none; add a 'labels' field, or set add_origin_loss: "
            "false and loss_weights: [1, 0]"
        )


class PlanProbe:
    """Resolves all stages of a plan once; `resolved[i]` are stage i's checked mappings."""

    def __init__(self, plan: DistillationPlan, student: nn.Module, teachers: Sequence[nn.Module],
                 teacher_names: Sequence[str], teacher_weights: Sequence[float],
                 adaptor: DataAdaptor, matchers: FeatureMatchers) -> None:
        self.plan, self.student, self.teachers = plan, student, list(teachers)
        self.names, self.weights = list(teacher_names), list(teacher_weights)
        self.adaptor, self.matchers = adaptor, matchers
        self.resolved: list[list[ResolvedMapping]] = []

    def run(self, batch: Any) -> list[list[ResolvedMapping]]:
        stages = self.plan.stages
        plan_targets = [[(m, teachers_for(m, self.names, s)) for m in s.mappings] for s in stages]
        for stage in stages:
            select_parameters(self.student, stage.trainable)  # every block names real parameters
        refusal = mapping_refusal(stages) if self.adaptor.separate_inputs(batch) else None
        if refusal is not None:
            raise MappingError(refusal)
        labels = self.adaptor.labels(batch)
        _require_labels(stages, labels)
        mask = self.adaptor.attention_mask(batch)
        try:
            with torch.no_grad(), model_modes(eval=[self.student, *self.teachers]):
                student, teachers = self._outputs(batch, plan_targets)
                for stage, targets in zip(stages, plan_targets):
                    self.resolved.append(self._resolve(stage, targets, student, teachers))
                    self._check_outputs(stage, student, teachers, labels)
                    StageLoss(stage, self.resolved[-1], self.matchers, self.weights)(
                        student, teachers, labels, mask)
        except AutodistillError:
            raise
        except Exception as exc:  # a user loss or model that fails on the probe batch
            raise MappingError(f"the probe batch failed before training: {type(exc).__name__}: {exc}") from exc
        return self.resolved

    def _outputs(self, batch: Any, plan_targets: list[list[tuple[LayerMapping, list[int]]]]
                 ) -> tuple[FeatureCapture, list[FeatureCapture | None]]:
        """One forward of the student and of each teacher a stage reads, every mapped path captured."""
        student_paths = [m.student for targets in plan_targets for m, _ in targets]
        teacher_paths = paths_per_teacher(((i, m.teacher) for targets in plan_targets
                                           for m, ids in targets for i in ids), len(self.teachers))
        any_teacher = any(s.needs_teacher for s in self.plan.stages)
        student = self._forward(self.student, student_paths, "student",
                                self.adaptor.student_inputs(batch, with_labels=True))
        teachers = [self._forward(t, paths, f"teacher '{name}'", self.adaptor.teacher_inputs(batch))
                    if paths or any_teacher else None
                    for t, paths, name in zip(self.teachers, teacher_paths, self.names)]
        return student, teachers

    @staticmethod
    def _forward(model: nn.Module, paths: list[str], role: str, inputs: Any) -> FeatureCapture:
        with FeatureCapture(model, paths, role=role) as capture:
            capture.run(model, *inputs.args, **inputs.kwargs)
        return capture

    def _resolve(self, stage: Stage, targets: list[tuple[LayerMapping, list[int]]],
                 student: FeatureCapture, teachers: list[FeatureCapture | None]) -> list[ResolvedMapping]:
        out = []
        for mapping, ids in targets:
            s = student.get(mapping.student, mapping.student_index)
            for i in ids:
                teacher = teachers[i]
                assert teacher is not None
                t = teacher.get(mapping.teacher, mapping.teacher_index)
                teacher_probs = is_distribution(t)
                label = mapping.name if len(self.names) == 1 else f"{mapping.name} ({self.names[i]})"
                try:
                    spec = choose_matcher(mapping.matcher, s.shape, t.shape,
                                          teacher_is_probs=teacher_probs, mapping=label)
                except MappingError as exc:
                    raise MappingError(f"stage '{stage.name}': {exc}") from None
                key = None
                if spec is not None:
                    key = matcher_key(label)
                    self.matchers.add(key, spec).to(s.device)
                out.append(ResolvedMapping(mapping, i, key, is_distribution(s), teacher_probs))
        return out

    def _check_outputs(self, stage: Stage, student: FeatureCapture,
                       teachers: list[FeatureCapture | None], labels: torch.Tensor | None) -> None:
        if stage.logit_kd is None:
            if stage.add_origin_loss and extract_own_loss(student.output) is None:
                extract_logits(student.output, role="student")
            return
        s = extract_logits(student.output, role="student")
        for name, t in zip(self.names, teachers):
            if t is None:
                continue
            tl = extract_logits(t.output, role=f"teacher '{name}'")
            if tl.shape != s.shape:
                raise MappingError(
                    f"stage '{stage.name}': student logits {tuple(s.shape)} and teacher '{name}' "
                    f"logits {tuple(tl.shape)} differ; build the student with the teacher's "
                    "number of labels (num_labels) and vocabulary"
                )
