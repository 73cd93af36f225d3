"""A progress bar for a stage: stage name, step, loss, steps/s; silent in quiet mode."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


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
