"""A student as ONNX, checked: ONNX Runtime must give PyTorch's logits within a tolerance.

Needs the `onnx` extra (`pip install 'autodistill-nas[onnx]'`: onnx and onnxruntime; the
`test` extra includes it). The graph is traced by torch's TorchScript exporter
(`dynamo=False`, which needs no onnxscript) with dynamic batch and sequence axes, and the
check runs on another batch size and sequence length than the trace, with padding, so a
shape frozen into the graph shows up as a failed check rather than as a wrong model later.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from autodistill.errors import ConfigError, ExportError

ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask")
ATOL = 1e-4
OPSET = 17


@dataclass(frozen=True)
class OnnxCheck:
    path: Path
    max_abs_diff: float       # between ONNX Runtime's and PyTorch's logits
    batch_size: int           # of the check (the trace used another)
    sequence_length: int


def require_onnx() -> None:
    """Fail before any work when the ONNX packages are missing."""
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"--onnx needs {' and '.join(missing)}: pip install 'autodistill-nas[onnx]'")


def _token_batch(model: nn.Module, batch_size: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    """Random token ids and an attention mask whose first row is padded at the end."""
    vocab = int(getattr(model.config, "vocab_size", 100))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch_size, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, length // 2:] = 0
    return {"input_ids": ids * mask, "attention_mask": mask}


def export_onnx(model: nn.Module, folder: Path) -> OnnxCheck:
    """Write `folder/model.onnx` (inputs input_ids and attention_mask, output logits) and check it."""
    require_onnx()
    import onnxruntime

    if not all(name in inspect.signature(model.forward).parameters for name in INPUTS):
        raise ConfigError(f"--onnx exports text students whose forward takes {', '.join(INPUTS)}; "
                          f"{type(model).__name__} does not")
    model = model.eval()
    positions = int(getattr(model.config, "max_position_embeddings", 64))
    trace = _token_batch(model, 2, min(16, positions), seed=0)
    path = folder / ONNX_FILE
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"}}
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer notes
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (trace["input_ids"], trace["attention_mask"]), str(path),
                          input_names=list(INPUTS), output_names=["logits"], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    check = _token_batch(model, 3, min(9, positions), seed=1)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {k: v.numpy() for k, v in check.items()})
    with torch.inference_mode():
        expected = model(**check).logits.float().numpy()
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= ATOL:
        raise ExportError(
            f"ONNX Runtime's logits differ from PyTorch's by up to {diff:.3g} (tolerance {ATOL:g}); "
            "nothing was exported. Export without --onnx, or report the model class"
        )
    batch, length = check["input_ids"].shape
    return OnnxCheck(path, diff, int(batch), int(length))
