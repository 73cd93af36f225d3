"""`evaluation.deployment`: the runtime a student ships in, and its quantisation.

    evaluation:
      deployment: {runtime: onnxruntime, quantization: static_int8, calibration_batches: 8}

`runtime: torch` (the default) measures the eager PyTorch module, as before. `onnxruntime`
exports every student (and the teacher) to ONNX and times and scores that graph in ONNX
Runtime, optionally quantised to int8 by ONNX Runtime's own tools (`dynamic_int8`, or
`static_int8` calibrated on `calibration_batches` training batches drawn with the search's
seed). Checked here, before anything runs: a quantisation needs `runtime: onnxruntime`, and
that runtime needs the `onnx` extra installed (found without importing it: config imports no
torch and no onnxruntime).
"""

from __future__ import annotations

import importlib.util
from typing import Annotated, Literal

from pydantic import Field, model_validator

from autodistill.config.sections import BoundedInt, Section

RUNTIMES = ("torch", "onnxruntime")
QUANTIZATIONS = ("none", "dynamic_int8", "static_int8")
INSTALL = "pip install 'autodistill-nas[onnx]'"
Runtime = Literal["torch", "onnxruntime"]
Quantization = Literal["none", "dynamic_int8", "static_int8"]


def missing_onnx_packages() -> list[str]:
    """The ONNX packages (onnx, onnxruntime) this environment lacks."""
    return [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]


class DeploymentSection(Section):
    runtime: Runtime = "torch"
    quantization: Quantization = "none"
    calibration_batches: Annotated[BoundedInt, Field(ge=1)] = 8   # static_int8's sample of training batches

    @model_validator(mode="after")
    def _runtime_exists(self) -> DeploymentSection:
        if self.quantization != "none" and self.runtime != "onnxruntime":
            raise ValueError(f"quantization {self.quantization} runs in ONNX Runtime, but runtime is "
                             f"{self.runtime}; set evaluation.deployment.runtime: onnxruntime or "
                             "quantization: none")
        missing = missing_onnx_packages() if self.runtime == "onnxruntime" else []
        if missing:
            raise ValueError(f"runtime onnxruntime needs {' and '.join(missing)}, which this environment "
                             f"lacks: {INSTALL} (or set evaluation.deployment.runtime: torch)")
        return self

    @property
    def deployed(self) -> bool:
        """The study ranks the deployed model's figures, not the eager module's."""
        return self.runtime != "torch"
