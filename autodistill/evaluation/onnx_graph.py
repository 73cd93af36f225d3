"""A text model as an ONNX graph, and ONNX Runtime sessions on fixed terms.

The graph is traced by torch's TorchScript exporter (`dynamo=False`, which needs no onnxscript)
with inputs `input_ids` and `attention_mask`, output `logits`, and dynamic batch and sequence
axes. `check_graph` runs it on another batch size and sequence length than the trace, with
padding, so a shape frozen into the graph shows up as a failed check rather than as a wrong
model later. An operator the exporter cannot write is named in the error (`ExportError`).

Sessions are made one way everywhere (latency, accuracy, the export's check): CPU provider,
every graph optimisation, sequential execution, `threads` intra-op threads (None: ONNX
Runtime's default), one inter-op thread and idle threads that sleep rather than spin, so the
deployed latency is a benchmark on the terms of `evaluation.latency`.
"""

from __future__ import annotations

import inspect
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autodistill.errors import ConfigError, ExportError

INPUTS = ("input_ids", "attention_mask")
OUTPUT = "logits"
OPSET = 17
ATOL = 1e-4   # fp32 graph against PyTorch
_OPERATOR = re.compile(r"operator '?([\w:.]+)'?", re.IGNORECASE)


@dataclass(frozen=True)
class GraphCheck:
    max_abs_diff: float       # between ONNX Runtime's and PyTorch's logits
    batch_size: int           # of the check (the trace used another)
    sequence_length: int


def token_batch(model: nn.Module, batch_size: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    """Random token ids and an attention mask whose first row is padded at the end."""
    vocab = int(getattr(model.config, "vocab_size", 100))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch_size, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, length // 2:] = 0
    return {"input_ids": ids * mask, "attention_mask": mask}


def _positions(model: nn.Module) -> int:
    return int(getattr(getattr(model, "config", None), "max_position_embeddings", 64))


def export_graph(model: nn.Module, path: Path) -> Path:
    """Write `model` (eval mode) to `path` as ONNX; an ExportError names an operator the
    exporter cannot write."""
    if not all(name in inspect.signature(model.forward).parameters for name in INPUTS):
        raise ConfigError(f"ONNX export takes text models whose forward takes {', '.join(INPUTS)}; "
                          f"{type(model).__name__} does not")
    trace = token_batch(model, 2, min(16, _positions(model)), seed=0)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            OUTPUT: {0: "batch"}}
    training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer notes
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (trace["input_ids"], trace["attention_mask"]), str(path),
                              input_names=list(INPUTS), output_names=[OUTPUT], dynamic_axes=axes,
                              opset_version=OPSET, dynamo=False)
    except Exception as exc:  # the exporter raises several types, all naming the operator
        found = _OPERATOR.search(str(exc))
        operator = found.group(1) if found else f"unknown ({type(exc).__name__}: {str(exc)[:200]})"
        raise ExportError(f"{type(model).__name__} cannot be exported to ONNX (opset {OPSET}): operator "
                          f"{operator} is not supported; set evaluation.deployment.runtime: torch, or "
                          "choose a model class whose operators ONNX supports") from None
    finally:
        model.train(training)
    return path


def session(path: Path, threads: int | None) -> Any:
    """An ONNX Runtime session on the fixed terms (module docstring)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    # idle pool threads sleep instead of spinning: a spinning pool takes the cores from whatever
    # is timed next to it (the paired teacher, another session), which reads as that model's latency
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def run_logits(runner: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> np.ndarray:
    """The graph's logits for one batch."""
    feed = {"input_ids": input_ids.detach().cpu().numpy().astype(np.int64),
            "attention_mask": attention_mask.detach().cpu().numpy().astype(np.int64)}
    (logits,) = runner.run([OUTPUT], feed)
    return logits


def check_graph(model: nn.Module, path: Path) -> GraphCheck:
    """ONNX Runtime's logits of `path` against PyTorch's on a padded batch of another shape than
    the trace's; an ExportError when they differ by more than ATOL."""
    check = token_batch(model, 3, min(9, _positions(model)), seed=1)
    got = run_logits(session(path, None), check["input_ids"], check["attention_mask"])
    training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            expected = model(**check).logits.float().numpy()
    finally:
        model.train(training)
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= ATOL:
        raise ExportError(
            f"ONNX Runtime's logits differ from PyTorch's by up to {diff:.3g} (tolerance {ATOL:g}); "
            "nothing was exported. Export without --onnx (or set evaluation.deployment.runtime: torch), "
            "or report the model class")
    batch, length = check["input_ids"].shape
    return GraphCheck(diff, int(batch), int(length))
