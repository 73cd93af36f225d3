"""int8 graphs from an fp32 ONNX graph, by ONNX Runtime's own quantisation tools.

- `dynamic_int8`: `quantize_dynamic`, int8 weights, activations quantised per call from their
  own range; needs no data.
- `static_int8`: `quantize_static` in QDQ form, int8 weights and activations, the activations'
  ranges calibrated (min-max) on a fixed sample of training batches the caller gives (the
  same ones every time: the task draws them with the study's seed), so the graph written is
  the same for the same student.

Only matrix products are quantised (MatMul, Gemm: where int8 kernels pay); layer norms,
softmax and GELU stay fp32, which keeps accuracy where a BERT loses most of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autodistill.config.deployment import QUANTIZATIONS
from autodistill.errors import ConfigError
from autodistill.evaluation.onnx_graph import INPUTS

OP_TYPES = ["MatMul", "Gemm"]


class _Calibration:
    """ONNX Runtime's CalibrationDataReader over the given batches (only the graph's inputs)."""

    def __init__(self, batches: Sequence[Mapping[str, torch.Tensor]]) -> None:
        self.feeds: Iterator[dict[str, np.ndarray]] = iter(
            [{name: batch[name].detach().cpu().numpy().astype(np.int64) for name in INPUTS}
             for batch in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def quantize(fp32: Path, out: Path, quantization: str,
             calibration: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the `quantization` of the graph `fp32` to `out`."""
    with _quiet_root_logger():  # its advice (pre-processing, non-constant biases) goes to the root logger
        _quantize(fp32, out, quantization, calibration)
    return out


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _quantize(fp32: Path, out: Path, quantization: str, calibration: Sequence[Mapping[str, Any]]) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if quantization == "dynamic_int8":
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=OP_TYPES)
    elif quantization == "static_int8":
        if not calibration:
            raise ConfigError("static_int8 calibrates on training batches, and none were given; set "
                              "evaluation.deployment.calibration_batches to 1 or more")
        quantize_static(str(fp32), str(out), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=OP_TYPES, calibrate_method=CalibrationMethod.MinMax,
                        calibration_providers=["CPUExecutionProvider"],
                        extra_options={"ActivationSymmetric": True})
    else:
        raise ConfigError(f"evaluation.deployment.quantization must be one of {', '.join(QUANTIZATIONS[1:])} "
                          f"to quantise, but got {quantization!r}")

