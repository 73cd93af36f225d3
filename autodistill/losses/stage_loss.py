"""The loss of one distillation stage: its layer mappings, logit KD and origin loss, weighted.

Features are read by path from captures (torchdistill's io-dict idea): the loss
never knows how they were captured, so a teacher-output cache can feed it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from autodistill.config.plan import LayerMapping, OutputIndex, Stage
from autodistill.losses.logits import extract_logits, extract_own_loss
from autodistill.losses.masking import logit_positions
from autodistill.losses.matchers import FeatureMatchers
from autodistill.losses.registry import LOSSES, TARGET_LOSSES, LossContext
from autodistill.losses.scored_positions import at_positions, scored_positions


class Features(Protocol):
    """What a loss reads from one forward pass of one model."""

    output: Any

    def get(self, path: str, index: OutputIndex = ()) -> torch.Tensor: ...


@dataclass(frozen=True)
class ResolvedMapping:
    """A layer mapping checked against real models: which teacher, which matcher, what kind."""

    mapping: LayerMapping
    teacher: int
    matcher_key: str | None
    student_is_probs: bool
    teacher_is_probs: bool

    @property
    def name(self) -> str:
        return self.mapping.name


class StageLoss:
    """Computes `(total, terms)` for one stage from student and teacher features."""

    def __init__(self, stage: Stage, mappings: Sequence[ResolvedMapping], matchers: FeatureMatchers,
                 teacher_weights: Sequence[float]) -> None:
        self.stage = stage
        self.mappings = tuple(mappings)
        self.matchers = matchers
        self.teacher_weights = tuple(teacher_weights)
        self._feature_losses = [LOSSES.get(m.mapping.loss) for m in self.mappings]
        kd = stage.logit_kd
        self._kd_losses = (LOSSES.get(kd.loss_types[0]), TARGET_LOSSES.get(kd.loss_types[1])) if kd else None
        self._origin_fallback = TARGET_LOSSES.get("CE")

    def __call__(self, student: Features, teachers: Sequence[Features | None],
                 labels: torch.Tensor | None, mask: torch.Tensor | None
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms: dict[str, torch.Tensor] = {}
        weighted: list[torch.Tensor] = []
        for resolved, loss_fn in zip(self.mappings, self._feature_losses):
            m = resolved.mapping
            teacher = teachers[resolved.teacher]
            assert teacher is not None
            s = student.get(m.student, m.student_index)
            t = teacher.get(m.teacher, m.teacher_index)
            if resolved.matcher_key is not None:
                s, t = self.matchers[resolved.matcher_key](s, t.to(s.dtype))
            ctx = LossContext(mask=mask, temperature=self.stage.temperature,
                              student_is_probs=resolved.student_is_probs,
                              teacher_is_probs=resolved.teacher_is_probs)
            value = loss_fn(s, t.to(s.dtype), ctx)
            key = m.name if len(self.teacher_weights) == 1 else f"{m.name} (teacher {resolved.teacher})"
            terms[key] = value
            weighted.append(m.weight * self._teacher_weight(resolved.teacher, m) * value)

        kd = self.stage.logit_kd
        # per-token labels (masked LM, token labels): logits and labels are read only at the scored
        # positions, whether the models projected only those (losses/scored_positions.py) or every token
        positions = scored_positions(mask, labels) if kd is not None or self.stage.add_origin_loss else None
        scored_labels = labels if positions is None or labels is None else labels[positions]
        if kd is not None and self._kd_losses is not None:
            ts_fn, st_fn = self._kd_losses
            logits = self._logits(student, "student", positions)
            ctx = LossContext(mask=None if positions is not None else logit_positions(mask, labels, logits.shape),
                              temperature=kd.temperature)
            if kd.loss_weights[0]:
                ts = sum(
                    w * ts_fn(logits, self._logits(t, f"teacher {i}", positions).to(logits.dtype), ctx)
                    for i, (w, t) in enumerate(zip(self.teacher_weights, teachers)) if t is not None
                )
                terms["kd"] = ts
                weighted.append(kd.loss_weights[0] * ts)
            if kd.loss_weights[1]:
                assert scored_labels is not None
                st = st_fn(logits, scored_labels, ctx)
                terms["student_target"] = st
                weighted.append(kd.loss_weights[1] * st)

        if self.stage.add_origin_loss:
            own = extract_own_loss(student.output)
            if own is None:
                assert scored_labels is not None
                own = self._origin_fallback(self._logits(student, "student", positions), scored_labels,
                                            LossContext())
            terms["origin"] = own
            weighted.append(self.stage.origin_loss_weight * own)

        total = weighted[0] if len(weighted) == 1 else torch.stack(weighted).sum()
        return total, terms

    @staticmethod
    def _logits(features: Features, role: str, positions: torch.Tensor | None) -> torch.Tensor:
        logits = extract_logits(features.output, role=role)
        return logits if positions is None else at_positions(logits, positions)

    def _teacher_weight(self, teacher: int, mapping: LayerMapping) -> float:
        # a mapping limited to one teacher gets that teacher's full weight
        return 1.0 if mapping.teacher_name is not None else self.teacher_weights[teacher]
