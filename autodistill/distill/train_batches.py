"""The train loader's batches, epoch after epoch, counted: the data position a checkpoint records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from autodistill.errors import ConfigError


class TrainBatches(Iterator[Any]):
    """The loader's batches, epoch after epoch; counts the batches consumed and skips that many
    to resume."""

    def __init__(self, loader: Iterable[Any]) -> None:
        self.loader, self.consumed = loader, 0
        try:
            self.per_epoch: int | None = len(loader)  # type: ignore[arg-type]
        except TypeError:  # a loader without a length
            self.per_epoch = None
        self._epochs = self._cycle()

    @property
    def epoch(self) -> float:
        """Passes over the loader so far (0 without a length)."""
        return self.consumed / self.per_epoch if self.per_epoch else 0.0

    def _cycle(self) -> Iterator[Any]:
        while True:
            empty = True
            for batch in self.loader:
                empty = False
                yield batch
            if empty:
                raise ConfigError("the train loader yields no batches")

    def __next__(self) -> Any:
        batch = next(self._epochs)
        self.consumed += 1
        return batch

    def skip(self, count: int) -> None:
        for _ in range(count):
            next(self)
