"""A deployment target (runtime + quantisation) and the deployed model it makes of a torch model.

    target = DeploymentTarget("onnxruntime", "dynamic_int8")
    deployed = deploy(student, target, folder, threads=2)             # folder/model.dynamic_int8.onnx
    measure_latencies([deployed, deployed_teacher], spec)             # the same harness and pairing
    kind.evaluate(deployed, validation_loader, device="cpu")          # the task's own evaluation

The deployed model is an `nn.Module` (`OnnxRuntimeModel`) around an ONNX Runtime session, so
whatever times or scores a torch model times or scores it the same way: it takes
`input_ids` and `attention_mask` (and all-zero `token_type_ids`, which the graph does not
take), returns `{"logits": tensor}`, and keeps the torch model's `config` for the latency
harness's inputs. `runtime: torch` deploys the model as it is.

`deploy` writes the fp32 graph (`model.onnx`, checked against PyTorch) and, when asked, its
int8 form next to it (`model.<quantization>.onnx`, evaluation/quantization.py).
`load_deployed` opens what an earlier `deploy` wrote (the teacher's cache, the export's
re-measurement).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autodistill.atomic_file import remove_dead_temporaries, temporary_path
from autodistill.config.deployment import INSTALL, QUANTIZATIONS, RUNTIMES, missing_onnx_packages
from autodistill.errors import ConfigError
from autodistill.evaluation.onnx_graph import check_graph, export_graph, run_logits, session
from autodistill.evaluation.quantization import quantize

ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class DeploymentTarget:
    """Where a student runs once shipped: `runtime` and `quantization` (evaluation.deployment)."""

    runtime: str = "torch"
    quantization: str = "none"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"evaluation.deployment.runtime must be one of {', '.join(RUNTIMES)}, "
                              f"but got {self.runtime!r}")
        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(f"evaluation.deployment.quantization must be one of "
                              f"{', '.join(QUANTIZATIONS)}, but got {self.quantization!r}")
        if self.quantization != "none" and self.runtime != "onnxruntime":
            raise ConfigError(f"evaluation.deployment.quantization: {self.quantization} runs in ONNX "
                              "Runtime; set evaluation.deployment.runtime: onnxruntime or quantization: none")

    @property
    def deployed(self) -> bool:
        """The model ships as something else than the eager torch module."""
        return self.runtime != "torch"

    @property
    def file_name(self) -> str:
        """The graph this target runs: model.onnx, or model.<quantization>.onnx."""
        return ONNX_FILE if self.quantization == "none" else f"model.{self.quantization}.onnx"

    def describe(self) -> str:
        return self.runtime if self.quantization == "none" else f"{self.runtime} {self.quantization}"


def require_runtime(target: DeploymentTarget) -> None:
    """Fail before any work when the target's runtime is not installed."""
    missing = missing_onnx_packages() if target.deployed else []
    if missing:
        raise ConfigError(f"evaluation.deployment.runtime: {target.runtime} needs {' and '.join(missing)}: "
                          f"{INSTALL}")


class OnnxRuntimeModel(nn.Module):
    """An ONNX graph in an ONNX Runtime session, called like the torch model it was exported from."""

    def __init__(self, path: Path, config: Any, *, threads: int | None) -> None:
        super().__init__()
        self.path, self.config, self.threads = Path(path), config, threads
        self.session = session(self.path, threads)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **unused: Any) -> dict[str, torch.Tensor]:
        if token_type_ids is not None and bool(token_type_ids.any()):
            raise ConfigError("the deployed ONNX graph takes input_ids and attention_mask only, and the "
                              "batch holds token_type_ids other than 0 (sentence pairs); set "
                              "evaluation.deployment.runtime: torch for such data")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return {"logits": torch.from_numpy(run_logits(self.session, input_ids, attention_mask))}


def deploy(model: nn.Module, target: DeploymentTarget, folder: Path, *, threads: int | None,
           calibration: Sequence[Mapping[str, torch.Tensor]] = ()) -> nn.Module:
    """`model` as `target` runs it: itself for torch, else its graph (`deploy_graph`)."""
    if not target.deployed:
        return model
    return deploy_graph(model, target, folder, threads=threads, calibration=calibration)


def deploy_graph(model: nn.Module, target: DeploymentTarget, folder: Path, *, threads: int | None,
                 calibration: Sequence[Mapping[str, torch.Tensor]] = ()) -> OnnxRuntimeModel:
    """`model`'s graph written under `folder` (fp32 checked against PyTorch, then quantised with
    `calibration` batches for static int8), in a session."""
    require_runtime(target)
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = export_graph(model, folder / ONNX_FILE)
    check_graph(model, fp32)
    if target.quantization != "none":
        quantize(fp32, folder / target.file_name, target.quantization, calibration)
    return load_deployed(folder, target, model.config, threads=threads)


def load_deployed(folder: Path, target: DeploymentTarget, config: Any, *, threads: int | None) -> OnnxRuntimeModel:
    """The graph an earlier `deploy(..., target, folder)` wrote, in a session."""
    path = folder / target.file_name
    if not path.is_file():
        raise ConfigError(f"{path} is missing: the {target.describe()} graph was not written there")
    return OnnxRuntimeModel(path, config, threads=threads)


class Deployer:
    """Deploys the models of a search under `root`: the teacher once (cached by `key`), each
    untrained student in a scratch folder while it is timed, each trained student in a
    folder of its own until `ship_into` moves its graphs into the trial's folder. A student
    whose weights are final before it is timed (a supernet proxy: nothing trained) is shipped
    first (`shipped`), and its timing and its scoring use that one graph."""

    def __init__(self, target: DeploymentTarget, root: Path, *, threads: int | None,
                 calibration: Sequence[Mapping[str, torch.Tensor]] = ()) -> None:
        require_runtime(target)
        self.target, self.root, self.threads, self.calibration = target, Path(root), threads, calibration
        self._shipped: tuple[nn.Module, Path, OnnxRuntimeModel] | None = None

    def _deploy(self, model: nn.Module, folder: Path) -> OnnxRuntimeModel:
        return deploy_graph(model, self.target, folder, threads=self.threads, calibration=self.calibration)

    def cached(self, model: nn.Module, key: str) -> OnnxRuntimeModel:
        """`model` deployed under root/teacher/<key>, written once (atomically) and reused."""
        final = self.root / "teacher" / key
        if not (final / self.target.file_name).is_file():
            remove_dead_temporaries(final.parent)
            tmp = temporary_path(final)
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                self._deploy(model, tmp)
                shutil.rmtree(final, ignore_errors=True)  # a folder without its graph: half-written
                tmp.rename(final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return load_deployed(final, self.target, model.config, threads=self.threads)

    @contextmanager
    def scratch(self, model: nn.Module) -> Iterator[OnnxRuntimeModel]:
        """`model` deployed in a scratch folder, removed afterwards (its cost: the graph's, not
        its weights', so an untrained student's is the trained one's); a model shipped already is
        its shipped graph, deployed once."""
        if self._shipped is not None and self._shipped[0] is model:
            yield self._shipped[2]
            return
        folder = self._folder("scratch")
        try:
            yield self._deploy(model, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def ship(self, model: nn.Module) -> OnnxRuntimeModel:
        """`model` deployed in a folder kept for `ship_into` (the previous one is dropped)."""
        self._drop_shipped()
        folder = self._folder("shipped")
        deployed = self._deploy(model, folder)
        self._shipped = (model, folder, deployed)
        return deployed

    def shipped(self, model: nn.Module) -> OnnxRuntimeModel:
        """The graph `ship(model)` made, or `ship(model)` now if `model` is not the one last shipped."""
        if self._shipped is not None and self._shipped[0] is model:
            return self._shipped[2]
        return self.ship(model)

    def ship_into(self, model: nn.Module, directory: Path) -> None:
        """Move the graphs `ship(model)` wrote into `directory` (the trial's student folder)."""
        if self._shipped is None or self._shipped[0] is not model:
            self._deploy(model, directory)  # deployed graphs always travel with the student
            return
        folder = self._shipped[1]
        for name in sorted({ONNX_FILE, self.target.file_name}):
            shutil.move(str(folder / name), str(directory / name))
        self._drop_shipped()

    def _folder(self, what: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        remove_dead_temporaries(self.root)
        folder = temporary_path(self.root / what)
        shutil.rmtree(folder, ignore_errors=True)
        return folder

    def _drop_shipped(self) -> None:
        if self._shipped is not None:
            shutil.rmtree(self._shipped[1], ignore_errors=True)
            self._shipped = None


def graph_size_mb(model: OnnxRuntimeModel) -> float:
    """The deployed graph's file size in MiB (its weights as they ship: int8 where quantised)."""
    return model.path.stat().st_size / 2**20


__all__ = ["ONNX_FILE", "RUNTIMES", "DeploymentTarget", "Deployer", "OnnxRuntimeModel", "deploy",
           "deploy_graph", "graph_size_mb", "load_deployed", "require_runtime"]
