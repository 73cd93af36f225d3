"""Checkpoints as an event handler of `Distiller.fit`: every `checkpoint_every_steps` global
steps (the student, matchers, the stage's optimiser, schedule and scaler, random states, the
position and the records) and at each stage end (the next stage starts afresh); the files and
their atomic writing are distill/checkpoint.py's."""

from __future__ import annotations

from torch import nn

from autodistill.distill.callbacks import DistillationCallback, DistillationControl, DistillationState
from autodistill.distill.checkpoint import Checkpointer, Position
from autodistill.distill.fit_run import FitRun
from autodistill.losses.matchers import FeatureMatchers


class CheckpointHandler(DistillationCallback):
    def __init__(self, run: FitRun, checkpointer: Checkpointer, *, student: nn.Module,
                 matchers: FeatureMatchers) -> None:
        self.run, self.checkpointer, self.student, self.matchers = run, checkpointer, student, matchers

    def on_step_end(self, state: DistillationState, control: DistillationControl) -> None:
        # the stage end writes its last step's
        if self.checkpointer.due(state.global_step) and state.step < state.total_steps and self.run.stage:
            self._write(Position(state.stage_index, state.step, state.global_step, self.run.batches.consumed),
                        self.run.stage.state_dict())

    def on_stage_end(self, state: DistillationState, control: DistillationControl) -> None:
        if not control.should_stop:
            self._write(Position(state.stage_index + 1, 0, state.global_step, self.run.batches.consumed), {})

    def _write(self, position: Position, training: dict) -> None:
        self.checkpointer.write(position, self.run.result.history(), student=self.student,
                                matchers=self.matchers, training=training)
