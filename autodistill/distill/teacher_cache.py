"""The teacher's outputs for every training example, computed once and read from disk.

The teacher is fixed during a search, and its forward pass is most of a distillation
step (337 of 447 ms on the 2-core CPU). A `TeacherCache` runs it once over the training
set for the features the layer mappings need (and the logits), stores each feature as a
memory-mapped `.npy` array, and hands a trial's batches the rows they need. Every trial, and
every worker process on the same machine, reads the same files.

Stored precision follows the run's `precision` (`cache_dtypes`): fp32 runs store features in
float16 and logits in float32; bf16 runs store both in bfloat16, fp16 runs in float16, since
their losses see the teacher through that precision anyway. Logits stay float32 where the loss
compares their values (an MSE logit loss, as regression's): a 16-bit target would set the
loss's floor. A feature whose values overflow float16 (|x| > 65504) is stored in float32
instead, saying so. Reads are float32 whatever the file holds.

Keys are content hashes: the directory is keyed by the teacher's weights and the teacher's
token tensors (students with tokenizers of their own share it: `PairedInputs.teacher`), each
file by its module path, output index and stored precision, so a changed teacher or dataset never reads a
stale cache. A feature file is written under a temporary name and renamed when complete,
with its marker written after; a file without its marker (a killed build) is rebuilt, and
the temporaries of a build killed with -9 are removed by the next. Before a build writes,
the space its files need is checked against the disk's free space and allocated
(memory-mapped writes to a full disk would kill the process with SIGBUS): a full disk is one
`DiskSpaceError` and the next run, with space, builds the cache. Use it only for a teacher in
eval mode on fixed inputs: with augmentation or teacher dropout the outputs differ per step,
and the teacher must run live.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate

from autodistill.atomic_file import remove_dead_temporaries, temporary_path
from autodistill.capture import FeatureCapture
from autodistill.config.plan import OutputIndex, Stage
from autodistill.data.adaptor import DataAdaptor, to_device
from autodistill.data.paired import PairedInputs
from autodistill.errors import ConfigError, DiskSpaceError
from autodistill.losses.logits import extract_logits

log = logging.getLogger(__name__)

Feature = tuple[str, OutputIndex]
LOGITS: Feature = ("<logits>", ())
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_HEADER_BYTES = 4096  # an upper bound on a .npy header
_FLOAT16_MAX = float(np.finfo(np.float16).max)
# how a dtype is written: bfloat16 (which numpy lacks) as its 16 raw bits
_STORED: dict[str, np.dtype[Any]] = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16),
                                     "bfloat16": np.dtype(np.uint16)}
# logit-KD loss types that compare the softmax distributions (16-bit logits change them by less
# than the temperature's rounding); any other compares values and keeps its logits in float32
_DISTRIBUTION_LOSSES = frozenset({"KL", "CE"})


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


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


def cache_dtypes(precision: str, stages: Sequence[Stage]) -> tuple[str, str]:
    """(features, logits) dtypes a run at `precision` caches its teacher's outputs in."""
    values = any(s.logit_kd is not None and s.logit_kd.loss_types[0] not in _DISTRIBUTION_LOSSES
                 for s in stages)
    if precision == "bf16":
        return "bfloat16", "float32" if values else "bfloat16"
    if precision == "fp16":
        return "float16", "float32" if values else "float16"
    return "float16", "float32"


def _stored(value: torch.Tensor, dtype: str) -> np.ndarray:
    """`value` as the file holds it (bfloat16 as its raw bits)."""
    if dtype == "bfloat16":
        return value.detach().to(torch.bfloat16).cpu().view(torch.int16).numpy().view(np.uint16)
    return value.detach().float().cpu().numpy().astype(_STORED[dtype], copy=False)


def _read(array: np.ndarray, rows: np.ndarray, dtype: str) -> torch.Tensor:
    """The rows of a feature file as float32."""
    if dtype == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(array[rows]).view(np.int16)).view(torch.bfloat16).float()
    return torch.from_numpy(np.asarray(array[rows], dtype=np.float32))


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
                 adaptor: DataAdaptor | None = None, batch_size: int = 64) -> None:
        if not hasattr(dataset, "fingerprint"):
            raise ConfigError("a teacher cache needs a dataset with a fingerprint() "
                              "(autodistill.data.TokenizedDataset)")
        # a student with its own tokenizer reads other tensors: the teacher's outputs, and so the
        # cache, depend on the teacher's inputs alone (any student tokenizer shares one cache)
        self.teacher, self.dataset = teacher, dataset.teacher if isinstance(dataset, PairedInputs) else dataset
        self.adaptor = adaptor or DataAdaptor()
        self.batch_size = batch_size
        self.dtypes = ("float16", "float32")  # (features, logits): set by `ensure` for its run
        key = hashlib.sha256(f"{teacher_fingerprint(teacher)}:{self.dataset.fingerprint()}".encode())
        self.directory = Path(root) / key.hexdigest()[:24]
        self._arrays: dict[Feature, tuple[np.ndarray, str]] = {}  # the open file and its dtype
        self.built: list[Feature] = []  # features this object computed (the rest were hits)

    # -- files ------------------------------------------------------------------------------
    def dtype(self, feature: Feature) -> str:
        """The dtype this run stores `feature` in."""
        return self.dtypes[1] if feature == LOGITS else self.dtypes[0]

    def _stem(self, feature: Feature, dtype: str | None = None) -> Path:
        """The file name (less its suffix) of `feature` stored in `dtype` (default: this run's)."""
        dtype = dtype or self.dtype(feature)
        key = [feature[0], list(feature[1])] + ([] if dtype == self._legacy(feature) else [dtype])
        return self.directory / hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]

    @staticmethod
    def _legacy(feature: Feature) -> str:
        """The dtype of files named without theirs (an fp32 run's, as before precisions were keyed)."""
        return "float32" if feature == LOGITS else "float16"

    def _open(self, feature: Feature, dtype: str) -> bool:
        stem = self._stem(feature, dtype)
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
        self._arrays[feature] = array, meta.get("dtype", dtype)
        return True

    def _open_stored(self, feature: Feature) -> bool:
        """Open `feature` at this run's dtype, or in float32 where float16 overflowed."""
        dtype = self.dtype(feature)
        return self._open(feature, dtype) or (dtype == "float16" and self._open(feature, "float32"))

    def ensure(self, features: Iterable[Feature], *, dtypes: tuple[str, str] = ("float16", "float32")) -> None:
        """Make every feature available at `dtypes` (features, logits: `cache_dtypes`): open what
        is on disk (a feature that overflowed float16 is in float32), compute the rest in one pass."""
        if dtypes != self.dtypes:
            self.dtypes, self._arrays = dtypes, {}
        missing = [f for f in dict.fromkeys(features) if f not in self._arrays and not self._open_stored(f)]
        if missing:
            self._build(missing)

    def _no_space(self, needed: int, free: int) -> DiskSpaceError:
        return DiskSpaceError(
            f"teacher cache: its files need {_size(needed)} in {self.directory}, but the disk has "
            f"{_size(free)} free; free space there (or give another output_dir, or set "
            "auto_distillation.teacher_cache: false) and run again")

    def _allocate(self, tmp: dict[Feature, Path], first: dict[Feature, torch.Tensor], n: int
                  ) -> dict[Feature, np.memmap]:
        """The features' memory-mapped files, sized by the first batch, checked against the free
        space and allocated on the disk before anything is written into them."""
        dtypes = {f: _STORED[self.dtype(f)] for f in first}
        shapes = {f: (n, *value.shape[1:]) for f, value in first.items()}
        needed = sum(math.prod(shapes[f]) * dtypes[f].itemsize + _HEADER_BYTES for f in first)
        free = shutil.disk_usage(self.directory).free
        if needed > free:
            raise self._no_space(needed, free)
        arrays = {}
        try:
            for f in first:
                arrays[f] = np.lib.format.open_memmap(tmp[f], mode="w+", dtype=dtypes[f], shape=shapes[f])
                fd = os.open(tmp[f], os.O_RDWR)
                try:
                    os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a disk that cannot allocate
                        raise
                finally:
                    os.close(fd)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise self._no_space(needed, shutil.disk_usage(self.directory).free) from None
            raise
        return arrays

    def _build(self, features: list[Feature]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_dead_temporaries(self.directory)  # the files of a build killed with -9
        paths = [f[0] for f in features if f != LOGITS]
        device = next(self.teacher.parameters()).device
        was_training = self.teacher.training
        self.teacher.eval()
        tmp = {f: temporary_path(self._stem(f, self.dtype(f)).with_suffix(".npy"), suffix=".npy") for f in features}
        overflowed: list[Feature] = []  # float16 features too large for it: built again in float32
        arrays: dict[Feature, np.memmap] = {}
        n = len(self.dataset)
        try:
            with torch.inference_mode(), FeatureCapture(self.teacher, paths, role="teacher") as capture:
                for start in range(0, n, self.batch_size):
                    rows = list(range(start, min(n, start + self.batch_size)))
                    batch = to_device(default_collate([self.dataset[i] for i in rows]), device)
                    inputs = self.adaptor.teacher_inputs(batch)
                    capture.run(self.teacher, *inputs.args, **inputs.kwargs)
                    values = {f: extract_logits(capture.output, role="teacher") if f == LOGITS
                              else capture.get(*f) for f in features}
                    if not arrays:
                        arrays = self._allocate(tmp, values, n)
                    for f, value in values.items():
                        if f in overflowed:  # built again in float32 afterwards: not cast, not written
                            continue
                        if self.dtype(f) == "float16" and bool((value.abs() > _FLOAT16_MAX).any()):
                            overflowed.append(f)
                            continue
                        arrays[f][start:start + len(rows)] = _stored(value, self.dtype(f))
            for f, array in arrays.items():
                if f in overflowed:
                    continue
                array.flush()
                stem = self._stem(f, self.dtype(f))
                os.replace(tmp[f], stem.with_suffix(".npy"))
                stem.with_suffix(".json").write_text(json.dumps(
                    {"path": f[0], "index": list(f[1]), "shape": list(array.shape), "dtype": self.dtype(f)}))
                self.built.append(f)
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                raise
            needed = sum(a.nbytes for a in arrays.values())
            raise self._no_space(needed, shutil.disk_usage(self.directory).free) from None
        finally:
            self.teacher.train(was_training)
            arrays.clear()  # the memory maps are closed before their files are removed
            for path in tmp.values():
                path.unlink(missing_ok=True)
        if overflowed:
            log.warning("teacher cache: %s exceed float16's range (65504): stored in float32",
                        ", ".join(f[0] for f in overflowed))
            self._build_float32(overflowed)
        for f in features:
            if f not in self._arrays and not self._open_stored(f):
                raise ConfigError(f"teacher cache: feature {f} could not be written in {self.directory}")
        log.info("teacher cache: computed %d feature(s) for %d examples in %s", len(features), n,
                 self.directory)

    def _build_float32(self, features: list[Feature]) -> None:
        """Build `features` again, in float32 (the float16 pass overflowed)."""
        kept = self.dtypes
        self.dtypes = ("float32", "float32")
        try:
            self._build(features)
        finally:
            self.dtypes = kept

    # -- reads --------------------------------------------------------------------------------
    def lookup(self, indices: torch.Tensor, features: Sequence[Feature], device: torch.device
               ) -> CachedTeacherOutputs:
        rows = indices.cpu().numpy()
        read = {}
        for f in features:
            array, dtype = self._arrays[f]
            read[f] = _read(array, rows, dtype).to(device)
        return CachedTeacherOutputs(read)

