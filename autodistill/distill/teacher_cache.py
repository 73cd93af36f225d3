"""The teacher's outputs for every training example, computed once and read from disk.

The teacher is fixed during a search, and its forward pass is most of a distillation
step (337 of 447 ms on the 2-core CPU). A `TeacherCache` runs it once over the training
set for the features the layer mappings need (and the logits), stores each feature as a
memory-mapped `.npy` array (float16 for features, float32 for logits), and hands a
trial's batches the rows they need. Every trial, and every worker process on the same
machine, reads the same files.

Keys are content hashes: the directory is keyed by the teacher's weights and the token
tensors, each file by its module path and output index, so a changed teacher or dataset
never reads a stale cache. A feature file is written under a temporary name and renamed
when complete, with its marker written after; a file without its marker (a killed build)
is rebuilt. Use it only for a teacher in eval mode on fixed inputs: with augmentation or
teacher dropout the outputs differ per step, and the teacher must run live.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate

from autodistill.capture import FeatureCapture
from autodistill.config.plan import OutputIndex, Stage
from autodistill.distill.adaptor import DataAdaptor, to_device
from autodistill.errors import ConfigError
from autodistill.losses.logits import extract_logits

log = logging.getLogger(__name__)

Feature = tuple[str, OutputIndex]
LOGITS: Feature = ("<logits>", ())


def teacher_fingerprint(teacher: nn.Module) -> str:
    """A hash of the teacher's class and every parameter and buffer (names, shapes, values)."""
    digest = hashlib.sha256(type(teacher).__qualname__.encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def features_for(stages: Sequence[Stage]) -> list[Feature]:
    """The teacher outputs a plan reads: mapped features, and the logits for logit KD."""
    needed: dict[Feature, None] = {}
    for stage in stages:
        for m in stage.mappings:
            needed[(m.teacher, tuple(m.teacher_index))] = None
        if stage.logit_kd is not None and stage.logit_kd.loss_weights[0]:
            needed[LOGITS] = None
    return list(needed)


class CachedTeacherOutputs:
    """One batch's teacher outputs, read from the cache (the interface a stage loss reads)."""

    def __init__(self, rows: dict[Feature, torch.Tensor]) -> None:
        self._rows = rows
        logits = rows.get(LOGITS)
        self.output = {"logits": logits} if logits is not None else None

    def get(self, path: str, index: OutputIndex = ()) -> torch.Tensor:
        return self._rows[(path, tuple(index))]


class TeacherCache:
    def __init__(self, teacher: nn.Module, dataset: Any, *, root: str | Path,
                 adaptor: DataAdaptor | None = None, batch_size: int = 64,
                 feature_dtype: str = "float16") -> None:
        if not hasattr(dataset, "fingerprint"):
            raise ConfigError("a teacher cache needs a dataset with a fingerprint() "
                              "(autodistill.data.TokenizedDataset)")
        self.teacher, self.dataset = teacher, dataset
        self.adaptor = adaptor or DataAdaptor()
        self.batch_size = batch_size
        self.feature_dtype = np.dtype(feature_dtype)
        key = hashlib.sha256(f"{teacher_fingerprint(teacher)}:{dataset.fingerprint()}".encode())
        self.directory = Path(root) / key.hexdigest()[:24]
        self._arrays: dict[Feature, np.ndarray] = {}
        self.built: list[Feature] = []  # features this object computed (the rest were hits)

    # -- files ------------------------------------------------------------------------------
    def _stem(self, feature: Feature) -> Path:
        name = hashlib.sha256(json.dumps([feature[0], list(feature[1])]).encode()).hexdigest()[:16]
        return self.directory / name

    def _open(self, feature: Feature) -> bool:
        stem = self._stem(feature)
        marker, data = stem.with_suffix(".json"), stem.with_suffix(".npy")
        if not (marker.exists() and data.exists()):
            return False
        try:
            array = np.load(data, mmap_mode="r")
            meta = json.loads(marker.read_text())
        except (ValueError, OSError, json.JSONDecodeError):
            return False
        if list(array.shape) != meta.get("shape") or array.shape[0] != len(self.dataset):
            return False
        self._arrays[feature] = array
        return True

    def ensure(self, features: Iterable[Feature]) -> None:
        """Make every feature available: open what is on disk, compute the rest in one pass."""
        missing = [f for f in dict.fromkeys(features) if f not in self._arrays and not self._open(f)]
        if missing:
            self._build(missing)

    def _build(self, features: list[Feature]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = [f[0] for f in features if f != LOGITS]
        device = next(self.teacher.parameters()).device
        was_training = self.teacher.training
        self.teacher.eval()
        tmp = {f: self._stem(f).with_name(f"{self._stem(f).name}.{os.getpid()}.tmp.npy") for f in features}
        arrays: dict[Feature, np.memmap] = {}
        n = len(self.dataset)
        try:
            with torch.inference_mode(), FeatureCapture(self.teacher, paths, role="teacher") as capture:
                for start in range(0, n, self.batch_size):
                    rows = list(range(start, min(n, start + self.batch_size)))
                    batch = to_device(default_collate([self.dataset[i] for i in rows]), device)
                    inputs = self.adaptor.teacher_inputs(batch)
                    capture.run(self.teacher, *inputs.args, **inputs.kwargs)
                    for f in features:
                        value = (extract_logits(capture.output, role="teacher") if f == LOGITS
                                 else capture.get(*f))
                        if f not in arrays:
                            dtype = np.float32 if f == LOGITS else self.feature_dtype
                            arrays[f] = np.lib.format.open_memmap(
                                tmp[f], mode="w+", dtype=dtype, shape=(n, *value.shape[1:]))
                        arrays[f][start:start + len(rows)] = value.float().cpu().numpy()
            for f, array in arrays.items():
                array.flush()
                stem = self._stem(f)
                os.replace(tmp[f], stem.with_suffix(".npy"))
                stem.with_suffix(".json").write_text(json.dumps(
                    {"path": f[0], "index": list(f[1]), "shape": list(array.shape),
                     "dtype": str(array.dtype)}))
                self.built.append(f)
        finally:
            self.teacher.train(was_training)
            for path in tmp.values():
                path.unlink(missing_ok=True)
        for f in features:
            if not self._open(f):
                raise ConfigError(f"teacher cache: feature {f} could not be written in {self.directory}")
        log.info("teacher cache: computed %d feature(s) for %d examples in %s", len(features), n,
                 self.directory)

    # -- reads --------------------------------------------------------------------------------
    def lookup(self, indices: torch.Tensor, features: Sequence[Feature], device: torch.device
               ) -> CachedTeacherOutputs:
        rows = indices.cpu().numpy()
        return CachedTeacherOutputs({
            f: torch.from_numpy(np.asarray(self._arrays[f][rows], dtype=np.float32)).to(device)
            for f in features
        })

