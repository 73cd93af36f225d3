"""A student as ONNX, checked: ONNX Runtime must give PyTorch's logits within a tolerance; its
int8 form (`--quantization`) beside it, checked against the accuracy the study recorded.

Needs the `onnx` extra (`pip install 'autodistill-nas[onnx]'`: onnx and onnxruntime; the
`test` extra includes it). The graph is the one a search with `evaluation.deployment` times and
scores (autodistill/evaluation/onnx_graph.py: traced with dynamic batch and sequence axes, checked
on another batch size and sequence length than the trace, with padding).

The int8 graph is the search's own where the trial's folder holds it (a search with
`evaluation.deployment.quantization` the same as `--quantization` wrote it there): its accuracy,
re-measured from the written file on the validation split, must equal the study's record.
Otherwise it is quantised now, and the card gives the accuracy measured here beside the
study's eager one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from autodistill.config.deployment import INSTALL, missing_onnx_packages
from autodistill.errors import ConfigError, ExportError
from autodistill.evaluation.deployment import ONNX_FILE, DeploymentTarget, load_deployed
from autodistill.evaluation.onnx_graph import check_graph, export_graph
from autodistill.evaluation.quantization import quantize

ACCURACY_TOLERANCE = 1e-9   # the same graph on the same data: the same predictions


@dataclass(frozen=True)
class OnnxCheck:
    path: Path
    max_abs_diff: float       # between ONNX Runtime's and PyTorch's logits
    batch_size: int           # of the check (the trace used another)
    sequence_length: int


@dataclass(frozen=True)
class QuantizedCheck:
    path: Path
    quantization: str               # dynamic_int8 | static_int8
    accuracy: float                 # re-measured from the written file, on the validation split
    recorded: float | None          # the study's record of this graph's accuracy (None: it ran another)
    eager_accuracy: float | None    # the study's record of the eager student's


def require_onnx() -> None:
    """Fail before any work when the ONNX packages are missing."""
    missing = missing_onnx_packages()
    if missing:
        raise ConfigError(f"--onnx needs {' and '.join(missing)}: {INSTALL}")


def export_onnx(model: nn.Module, folder: Path) -> OnnxCheck:
    """Write `folder/model.onnx` (inputs input_ids and attention_mask, output logits) and check it."""
    require_onnx()
    path = export_graph(model.eval(), folder / ONNX_FILE)
    check = check_graph(model, path)
    return OnnxCheck(path, check.max_abs_diff, check.batch_size, check.sequence_length)


@dataclass(frozen=True)
class QuantizationRequest:
    """`--quantization`: which int8 form, and the task's validation accuracy of a model (`score`),
    ONNX Runtime's threads and static int8's calibration batches, all from the search's config."""

    quantization: str
    score: Callable[[nn.Module], float]
    threads: int | None
    calibration: Sequence[Mapping[str, Any]] = ()


def export_quantized(folder: Path, request: QuantizationRequest, *, accuracy: float | None,
                     eager_accuracy: float | None) -> QuantizedCheck:
    """`folder/model.<quantization>.onnx` beside `folder/model.onnx` (module docstring); `accuracy`
    and `eager_accuracy` are the trial's recorded ones (`eager_accuracy` None: the study measured
    the eager module, and `accuracy` is its)."""
    target = DeploymentTarget("onnxruntime", request.quantization)
    path = folder / target.file_name
    searched = path.is_file()
    if not searched:
        quantize(folder / ONNX_FILE, path, request.quantization, request.calibration)
    measured = request.score(load_deployed(folder, target, None, threads=request.threads))
    expected = accuracy if searched else None
    if expected is not None and not abs(measured - expected) <= ACCURACY_TOLERANCE:
        raise ExportError(f"{path.name} scores {measured:.6g} on the validation split, but the study recorded "
                          f"{expected:.6g} for it; nothing was exported. Export with the config the search "
                          "ran with (its data and evaluation.latency.threads)")
    return QuantizedCheck(path, request.quantization, measured, expected,
                          eager_accuracy if eager_accuracy is not None else accuracy)
