"""Where a supernet lives: `<root>/<key>/final/` (finished) and `<root>/<key>/checkpoint.pt` (latest).

The key hashes what the supernet is a function of (the teacher's weights, the training data,
the search space, the settings), so a second run, a resumed study and every worker find the
same folder, and a changed teacher or space never reads a stale one. Both are written whole
or not at all: the checkpoint through `write_atomically`, the final folder under a temporary
name of this process's own (`autodistill.atomic_file.temporary_path`) renamed when complete,
its marker inside; the first worker to finish wins, and the temporaries of killed processes
are removed by the next save.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from autodistill.atomic_file import remove_dead_temporaries, temporary_path, write_atomically
from autodistill.errors import ConfigError

__all__ = ["SupernetStore", "supernet_key"]

log = logging.getLogger(__name__)

DONE = "supernet.json"
CHECKPOINT = "checkpoint.pt"
LOCK = ".training.lock"
_FINAL = "final"


def supernet_key(*, teacher_fingerprint: str, data_fingerprint: str, space: Mapping[str, Any],
                 settings: Mapping[str, Any]) -> str:
    """A content key: equal inputs, equal key; any change to one of them, another key."""
    blob = json.dumps({"teacher": teacher_fingerprint, "data": data_fingerprint, "space": space,
                       "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class SupernetStore:
    def __init__(self, root: str | Path, key: str) -> None:
        self.key = key
        self.directory = Path(root) / key
        self.final = self.directory / _FINAL
        self.checkpoint_path = self.directory / CHECKPOINT

    # -- the finished supernet ---------------------------------------------------------------------
    def finished(self) -> bool:
        return (self.final / DONE).exists()

    def load(self, template: PreTrainedModel) -> PreTrainedModel:
        """The finished supernet as a model of `template`'s class, on its device, in eval mode."""
        attn = getattr(template.config, "_attn_implementation", None)
        kwargs = {"attn_implementation": attn} if attn else {}
        model = type(template).from_pretrained(self.final, **kwargs)
        # transformers types its `to` wrapper's first argument as the model itself
        return model.to(next(template.parameters()).device).eval()  # type: ignore[arg-type]

    def save(self, model: PreTrainedModel, record: Mapping[str, Any]) -> Path:
        """Write the finished supernet (and `record`, JSON) whole; drop the checkpoint."""
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_dead_temporaries(self.directory)
        tmp = temporary_path(self.final)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            model.save_pretrained(tmp)
            (tmp / DONE).write_text(json.dumps({"key": self.key, **record}, default=str))
            try:
                tmp.rename(self.final)
            except OSError:  # the folder exists: another worker's complete copy wins, a partial one goes
                if not self.finished():
                    shutil.rmtree(self.final)
                    tmp.rename(self.final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.checkpoint_path.unlink(missing_ok=True)
        log.info("supernet saved in %s", self.final)
        return self.final

    @contextmanager
    def training_lock(self) -> Iterator[None]:
        """Held while this supernet trains: a second worker on this machine waits here, then finds
        it finished (an exclusive `flock`, released by the system if the holder dies)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- the latest checkpoint ------------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        write_atomically(self.checkpoint_path, lambda tmp: torch.save({**state, "key": self.key}, tmp))

    def latest_checkpoint(self) -> dict[str, Any] | None:
        """The latest checkpoint's state, or None; ConfigError if it belongs to another supernet."""
        if not self.has_checkpoint():
            return None
        try:
            state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError) as exc:
            raise ConfigError(f"supernet checkpoint {self.checkpoint_path} cannot be read ({exc}); "
                              "delete it to train the supernet from the start") from None
        if not isinstance(state, dict) or state.get("key") != self.key:
            found = state.get("key") if isinstance(state, dict) else None
            raise ConfigError(
                f"supernet checkpoint {self.checkpoint_path} was written for supernet {found!r}, not "
                f"{self.key!r} (another teacher, data, space or settings); delete it to train anew")
        return state
