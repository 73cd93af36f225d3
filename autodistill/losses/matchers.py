"""Feature matchers: bridge a student feature to its teacher's shape before the loss.

Each matcher maps a (student, teacher) feature pair to a pair of equal shape:
- `LinearMatcher`: a trainable projection of the student's last dimension
  (e.g. hidden 128 -> 384);
- `Conv1x1Matcher`: a trainable 1x1 convolution over channels, for CNN feature maps;
- `HeadMeanMatcher`: averages attention maps over heads on both sides, when the
  student has a different number of heads.
Matchers are created from the shapes seen on a probe batch, before the optimiser,
so they are trained with the student and saved with it (`FeatureMatchers.save`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from autodistill.atomic_file import write_atomically
from autodistill.errors import MappingError


class LinearMatcher(nn.Module):
    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.proj(student), teacher


class Conv1x1Matcher(nn.Module):
    def __init__(self, student_channels: int, teacher_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(student_channels, teacher_channels, kernel_size=1)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.proj(student), teacher


class HeadMeanMatcher(nn.Module):
    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return student.mean(dim=1, keepdim=True), teacher.mean(dim=1, keepdim=True)


@dataclass(frozen=True)
class MatcherSpec:
    """What is needed to rebuild a matcher: its kind and the two sizes it bridges."""

    kind: str
    student_dim: int = 0
    teacher_dim: int = 0

    def build(self) -> nn.Module:
        if self.kind == "linear":
            return LinearMatcher(self.student_dim, self.teacher_dim)
        if self.kind == "conv1x1":
            return Conv1x1Matcher(self.student_dim, self.teacher_dim)
        if self.kind == "head_mean":
            return HeadMeanMatcher()
        raise MappingError(f"unknown matcher kind {self.kind!r}; allowed: linear, conv1x1, head_mean")


def choose_matcher(requested: str, student: torch.Size, teacher: torch.Size, *,
                   teacher_is_probs: bool, mapping: str) -> MatcherSpec | None:
    """The matcher that bridges `student` to `teacher` (None: shapes already equal)."""
    s, t = tuple(student), tuple(teacher)
    if requested == "none" or (requested == "auto" and s == t):
        if s != t:
            raise MappingError(
                f"layer mapping '{mapping}': student shape {s} != teacher shape {t} "
                "and matcher is 'none'; use matcher: auto"
            )
        return None
    fits = {
        "linear": len(s) == len(t) and s[:-1] == t[:-1],
        "conv1x1": len(s) == len(t) == 4 and s[0] == t[0] and s[2:] == t[2:],
        "head_mean": len(s) == len(t) == 4 and s[0] == t[0] and s[2:] == t[2:],
    }
    if requested == "auto":
        if fits["linear"]:
            requested = "linear"
        elif fits["head_mean"]:
            requested = "head_mean" if teacher_is_probs else "conv1x1"
        else:
            raise MappingError(
                f"layer mapping '{mapping}': no matcher can bridge student shape {s} to teacher "
                f"shape {t}; only the last dimension (linear), the channels of a 4-d feature map "
                "(conv1x1) or the heads of an attention map (head_mean) may differ. Map layers "
                "whose other dimensions (batch, sequence length) agree"
            )
    elif not fits[requested]:
        raise MappingError(
            f"layer mapping '{mapping}': matcher '{requested}' cannot bridge student shape {s} "
            f"to teacher shape {t}"
        )
    dims = {"linear": (s[-1], t[-1]), "conv1x1": (s[1], t[1]), "head_mean": (0, 0)}[requested]
    return MatcherSpec(requested, *dims)


def matcher_key(mapping_name: str) -> str:
    """A ModuleDict-safe key for a mapping (dots are not allowed in module names)."""
    cleaned = "".join(c if c.isalnum() else "_" for c in mapping_name)
    return "_".join(part for part in cleaned.split("_") if part)


class FeatureMatchers(nn.Module):
    """All matchers of a distillation, by mapping; saved and reloaded with the student."""

    FILENAME = "matchers.pt"

    def __init__(self) -> None:
        super().__init__()
        self.matchers = nn.ModuleDict()
        self.specs: dict[str, MatcherSpec] = {}

    def add(self, key: str, spec: MatcherSpec) -> nn.Module:
        if key in self.specs:
            if self.specs[key] != spec:
                raise MappingError(f"matcher {key!r} exists with {self.specs[key]}, not {spec}")
            return self.matchers[key]
        self.specs[key] = spec
        self.matchers[key] = spec.build()
        return self.matchers[key]

    def __contains__(self, key: object) -> bool:
        return key in self.specs

    def __getitem__(self, key: str) -> nn.Module:
        return self.matchers[key]

    def save(self, directory: str | Path) -> Path:
        document = {"specs": {k: asdict(v) for k, v in self.specs.items()}, "state_dict": self.state_dict()}
        return write_atomically(Path(directory) / self.FILENAME, lambda tmp: torch.save(document, tmp))

    @classmethod
    def load(cls, directory: str | Path) -> FeatureMatchers:
        blob = torch.load(Path(directory) / cls.FILENAME, map_location="cpu", weights_only=True)
        matchers = cls()
        for key, spec in blob["specs"].items():
            matchers.add(key, MatcherSpec(**spec))
        matchers.load_state_dict(blob["state_dict"])
        return matchers
