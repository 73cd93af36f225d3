"""What a `fit` returns and a checkpoint keeps: each stage's losses and time, each evaluation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageRecord:
    name: str
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps_per_second(self) -> float:
        return len(self.losses) / self.seconds if self.seconds else 0.0


@dataclass
class Evaluation:
    """The evaluation after global step `global_step` (in stage `stage`): metrics per set."""

    stage: str
    global_step: int
    metrics: dict[str, dict[str, float]]


@dataclass
class FitResult:
    stages: list[StageRecord] = field(default_factory=list)
    stopped_early: bool = False
    evaluations: list[Evaluation] = field(default_factory=list)

    @property
    def losses(self) -> list[float]:
        return [loss for s in self.stages for loss in s.losses]

    def history(self) -> dict[str, Any]:
        """What a checkpoint keeps of the records: every stage's losses and time, every evaluation."""
        return {"stages": [dataclasses.asdict(r) for r in self.stages],
                "evaluations": [dataclasses.asdict(e) for e in self.evaluations]}

    @classmethod
    def from_history(cls, history: dict[str, Any], *, stages_begun: int | None) -> FitResult:
        """The records a checkpoint kept; `stages_begun`: at a stage end, the stages done (the next
        one starts a record of its own), else None (the last record goes on)."""
        stages = [StageRecord(r["name"], r["steps"], list(r["losses"]), r["seconds"]) for r in history["stages"]]
        return cls(stages=stages if stages_begun is None else stages[:stages_begun],
                   evaluations=[Evaluation(**e) for e in history["evaluations"]])
