"""Checkpoints of a distillation run, each written whole or not at all, and the position to resume at.

    <folder>/latest          the name of the newest complete checkpoint (renamed into place)
    <folder>/step-<N>/       checkpoint.json: where the run stood (stage, step, batches consumed),
                             the fingerprint of the plan and student, every stage's losses and
                             every evaluation so far;
                             state.pt: the student, the optimiser, schedule and gradient scaler,
                             the torch/numpy/python random states; matchers.pt (FeatureMatchers.save)

A checkpoint folder is written under a temporary name of its own and renamed when complete, then
`latest` is replaced atomically and older checkpoints removed: a run killed at any moment leaves
`latest` naming a whole checkpoint. A checkpoint of another plan or student architecture is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from autodistill.atomic_file import write_atomically, write_folder_atomically
from autodistill.config.plan import DistillationPlan
from autodistill.errors import ConfigError
from autodistill.losses.matchers import FeatureMatchers

LATEST = "latest"
META = "checkpoint.json"
STATE = "state.pt"


@dataclass(frozen=True)
class Position:
    """Where a run stands: `step` optimiser steps done in stage `stage_index`, `batches` consumed."""

    stage_index: int = 0
    step: int = 0
    global_step: int = 0
    batches: int = 0


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    position: Position
    history: dict[str, Any]  # "stages": per stage begun, its record; "evaluations": every evaluation

    def state(self) -> dict[str, Any]:
        return torch.load(self.folder / STATE, map_location="cpu", weights_only=True)

    def load_matchers(self, matchers: FeatureMatchers) -> None:
        if matchers.specs:
            blob = torch.load(self.folder / FeatureMatchers.FILENAME, map_location="cpu", weights_only=True)
            matchers.load_state_dict(blob["state_dict"])


def fingerprint(plan: DistillationPlan, student: nn.Module) -> str:
    """What a checkpoint must match: the plan (less the settings that do not change the weights:
    device, progress, checkpoint, evaluation and logging intervals) and the student's class,
    parameter and buffer names, shapes and types."""
    training = dataclasses.replace(plan, progress=True, device="auto", checkpoint_every_steps=0,
                                   precision_force=False, eval_every_steps=0, tensorboard=False,
                                   log_every_steps=0)
    architecture = [(n, list(t.shape), str(t.dtype)) for n, t in student.state_dict().items()]
    blob = json.dumps({"plan": repr(training), "student": type(student).__qualname__,
                       "architecture": architecture})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def random_states() -> dict[str, Any]:
    # legacy=True (the default): the MT19937 state as a tuple
    kind, keys, pos, has_gauss, gauss = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                              "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                                        float(gauss)]}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def latest(folder: str | Path) -> Path | None:
    """The newest complete checkpoint in `folder`, if any."""
    pointer = Path(folder) / LATEST
    if not pointer.is_file():
        return None
    found = pointer.parent / pointer.read_text().strip()
    return found if (found / META).is_file() else None


def refuse_overwrite(folder: str | Path, *, fix: str) -> None:
    """A run that does not resume never writes over a checkpoint already in `folder`."""
    if latest(folder) is not None:
        raise ConfigError(f"checkpoint folder {str(folder)!r} holds a checkpoint of an earlier run, which this "
                          f"run would overwrite; {fix}")


def read_checkpoint(folder: str | Path, expected: str, *, fix: str) -> Checkpoint:
    """The newest checkpoint in `folder`, refused unless its fingerprint is `expected`."""
    found = latest(folder)
    if found is None:
        raise ConfigError(f"resume: {str(folder)!r} holds no complete checkpoint; {fix}")
    meta = json.loads((found / META).read_text())
    if meta["fingerprint"] != expected:
        raise ConfigError(f"resume: the checkpoint {str(found)!r} was written by another plan or student "
                          f"architecture (fingerprint {meta['fingerprint']}, this run's {expected}); resume "
                          "with the config and student that wrote it, or start over in a new folder")
    return Checkpoint(found, Position(**meta["position"]), meta["history"])


class Checkpointer:
    """Writes a run's checkpoints into `folder`: every `every` global steps (0: never) and at stage ends."""

    def __init__(self, folder: str | Path, fingerprint: str, every: int) -> None:
        self.folder, self.fingerprint, self.every = Path(folder), fingerprint, every

    def due(self, global_step: int) -> bool:
        return self.every > 0 and global_step % self.every == 0

    def write(self, position: Position, history: dict[str, Any], *, student: nn.Module,
              matchers: FeatureMatchers, training: dict[str, Any]) -> Path:
        """Write one checkpoint; `training`: the optimiser's, schedule's and scaler's states (empty at
        a stage end)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"step-{position.global_step:09d}"
        if final == latest(self.folder):
            return final

        def write(tmp: Path) -> None:
            torch.save({"student": student.state_dict(), "random": random_states(), **training}, tmp / STATE)
            if matchers.specs:
                matchers.save(tmp)
            meta = {"fingerprint": self.fingerprint, "position": dataclasses.asdict(position), "history": history}
            (tmp / META).write_text(json.dumps(meta))

        write_folder_atomically(final, write, replace=True)  # one there is an unfinished run's, never `latest`
        write_atomically(self.folder / LATEST, lambda path: path.write_text(final.name))
        for old in self.folder.glob("step-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        return final
