"""A progress bar for a stage: stage name, step, loss, steps/s; silent in quiet mode.
`ProgressBars` is one per stage of a `Distiller.fit`, as an event handler (a quiet run has none)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from autodistill.distill.callbacks import DistillationCallback, DistillationControl, DistillationState


class Progress:
    def __init__(self, stage: str, total: int, *, quiet: bool) -> None:
        self._bar = None if quiet else tqdm(
            total=total, desc=stage, unit="step", dynamic_ncols=True, file=sys.stderr, leave=True)

    def update(self, loss: float) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class ProgressBars(DistillationCallback):
    def __init__(self) -> None:
        self._bar: Progress | None = None

    def on_stage_begin(self, state: DistillationState, control: DistillationControl) -> None:
        self._bar = Progress(state.stage.name if state.stage else "", state.total_steps, quiet=False)

    def on_step_end(self, state: DistillationState, control: DistillationControl) -> None:
        if self._bar is not None:
            self._bar.update(state.loss)

    def on_stage_end(self, state: DistillationState, control: DistillationControl) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
