"""Latency as a benchmark: fixed inputs, fixed threads, warm-up, many timed repeats.

Not 1000 / samples-per-second of an evaluation loop: a model is timed on one fixed
batch (batch size x sequence length), in eval mode under `torch.inference_mode()`,
with a set number of intra-op threads, after `warmup` untimed calls, over `repeats`
timed calls, on the device the config names. The result is the median (p50) and the
90th percentile, plus mean and minimum for reference.

    spec = LatencySpec(batch_size=1, sequence_length=128, threads=2)
    lat = measure_latency(student, spec)          # a transformers model: dummy token ids
    lat = measure_latency(cnn, spec, example_inputs=(torch.randn(1, 3, 32, 32),))
    student_lat, teacher_lat = measure_latencies([student, teacher], spec)   # interleaved: a fair ratio
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from autodistill.errors import ConfigError

MIN_REPEATS = 20
_INPUT_SEED = 0


def _check_int(name: str, value: Any, low: int, rule: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(
            f"evaluation.latency.{name} must be an integer {rule}, but got {name}={value!r}; "
            f"set it to {low} or more"
        )


@dataclass(frozen=True)
class LatencySpec:
    """How to time a model: input shape, warm-up, repeats, threads and device.

    `threads=None` keeps torch's current intra-op thread count.
    """

    batch_size: int = 1
    sequence_length: int = 128
    warmup: int = 5
    repeats: int = 30
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_int("batch_size", self.batch_size, 1, ">= 1")
        _check_int("sequence_length", self.sequence_length, 1, ">= 1")
        _check_int("warmup", self.warmup, 0, ">= 0")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) \
                or self.repeats < MIN_REPEATS:
            raise ConfigError(
                f"evaluation.latency.repeats must be an integer >= {MIN_REPEATS} so that the "
                f"median and p90 mean something, but got repeats={self.repeats!r}; "
                f"set repeats to {MIN_REPEATS} or more"
            )
        if self.threads is not None:
            _check_int("threads", self.threads, 1, ">= 1 (or null for torch's current setting)")
        if not isinstance(self.device, str):
            raise ConfigError(
                f"evaluation.latency.device must be a device string such as 'cpu' or 'cuda:0', "
                f"but got device={self.device!r}"
            )
        try:
            torch.device(self.device)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"evaluation.latency.device must be a torch device string such as 'cpu', 'cuda' "
                f"or 'cuda:0', but got device={self.device!r} ({exc})"
            ) from None


@dataclass(frozen=True)
class Latency:
    """One benchmark's result, in milliseconds per call (one call = one batch).

    `sequence_length` is None when the caller supplied `example_inputs`; `threads` is
    the intra-op thread count in force during the measurement.
    """

    p50_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    repeats: int
    batch_size: int
    sequence_length: int | None
    device: str
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters())


def model_size_mb(model: nn.Module) -> float:
    """Bytes of parameters and buffers, in MiB (2**20 bytes)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def resolve_latency_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"evaluation.latency.device is {name!r} but CUDA is not available on this "
                f"machine; set evaluation.latency.device to 'cpu' or run on a machine with a GPU"
            )
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"evaluation.latency.device is {name!r} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); choose an index below that"
            )
        device = torch.device("cuda", index)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"evaluation.latency.device is {name!r} but MPS is not available on this machine; "
            f"set evaluation.latency.device to 'cpu'"
        )
    return device


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _dummy_inputs(model: nn.Module, spec: LatencySpec, vocab_size: int | None
                  ) -> dict[str, torch.Tensor]:
    config = getattr(model, "config", None)
    vocab = vocab_size if vocab_size is not None else getattr(config, "vocab_size", None)
    if vocab is None:
        raise ConfigError(
            f"measure_latency cannot build inputs for {type(model).__name__}: it has no "
            f"config.vocab_size; pass example_inputs=(tensor, ...) or a dict of tensors, "
            f"or vocab_size=..."
        )
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 1:
        raise ConfigError(f"measure_latency needs vocab_size >= 1, but got vocab_size={vocab!r}")
    max_positions = getattr(config, "max_position_embeddings", None)
    if isinstance(max_positions, int) and spec.sequence_length > max_positions:
        raise ConfigError(
            f"evaluation.latency.sequence_length={spec.sequence_length} exceeds the model's "
            f"max_position_embeddings={max_positions}; set a sequence length <= {max_positions}"
        )
    shape = (spec.batch_size, spec.sequence_length)
    generator = torch.Generator().manual_seed(_INPUT_SEED)
    inputs = {
        "input_ids": torch.randint(0, vocab, shape, generator=generator),
        "attention_mask": torch.ones(shape, dtype=torch.long),
    }
    if getattr(config, "type_vocab_size", None) is not None:
        inputs["token_type_ids"] = torch.zeros(shape, dtype=torch.long)
    return inputs


def _to_device(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, Mapping):
        return {k: _to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_to_device(v, device) for v in inputs)
    return inputs


def _leading_dim(inputs: Any) -> int | None:
    values = inputs.values() if isinstance(inputs, Mapping) else (
        inputs if isinstance(inputs, (tuple, list)) else (inputs,))
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() >= 1:
            return int(value.shape[0])
    return None


def measure_latency(model: nn.Module, spec: LatencySpec | None = None, *,
                    example_inputs: Mapping[str, torch.Tensor] | tuple | torch.Tensor | None = None,
                    vocab_size: int | None = None) -> Latency:
    """Time `model` on one fixed batch and return p50/p90/mean/min in ms per call.

    Inputs: `example_inputs` when given (a dict of tensors is passed as keyword
    arguments, a tuple/list as positional arguments, a tensor as the one argument);
    otherwise dummy token ids of shape (batch_size, sequence_length) drawn once from a
    fixed generator below `vocab_size` or the model's `config.vocab_size`, an all-ones
    `attention_mask`, and zero `token_type_ids` when the config has `type_vocab_size`.

    The model and inputs go to `spec.device`; the thread count is set to
    `spec.threads` for the measurement; each of `repeats` timed calls is read with
    `time.perf_counter_ns` (after `torch.cuda.synchronize()` on CUDA). Percentiles use
    numpy's 'linear' method (interpolation between the closest ranks), so p50 is the
    ordinary median. Afterwards the thread count, every submodule's training flag and
    the model's device are restored.
    """
    return measure_latencies([model], spec, example_inputs=example_inputs, vocab_size=vocab_size)[0]


def measure_latencies(models: Sequence[nn.Module], spec: LatencySpec | None = None, *,
                      example_inputs: Mapping[str, torch.Tensor] | tuple | torch.Tensor | None = None,
                      vocab_size: int | None = None) -> list[Latency]:
    """Time several models on the same terms, interleaved: each timed round calls every
    model once, so a machine that gets busier or quieter during the measurement slows all
    of them alike and their ratio (a student's speed-up over its teacher) stays fair.
    Each model gets its own inputs as `measure_latency` describes."""
    spec = spec or LatencySpec()
    device = resolve_latency_device(spec.device)
    benches = [_Bench(model, spec, device, example_inputs, vocab_size) for model in models]
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda *a, **k: None)
    previous_threads = torch.get_num_threads()
    timings_ns: list[list[int]] = [[] for _ in benches]
    try:
        if spec.threads is not None:
            torch.set_num_threads(spec.threads)
        threads = torch.get_num_threads()
        for bench in benches:
            bench.prepare()
        with torch.inference_mode():
            for bench in benches:
                for _ in range(spec.warmup):
                    bench.call()
            sync(device)
            for _ in range(spec.repeats):
                for bench, timings in zip(benches, timings_ns):
                    start = time.perf_counter_ns()
                    bench.call()
                    sync(device)
                    timings.append(time.perf_counter_ns() - start)
    finally:
        for bench in benches:
            bench.restore()
        torch.set_num_threads(previous_threads)
    return [_summary(timings, bench, spec, device, threads) for bench, timings in zip(benches, timings_ns)]


class _Bench:
    """One model set up for timing: its inputs on the device, eval mode; `restore` undoes it."""

    def __init__(self, model: nn.Module, spec: LatencySpec, device: torch.device,
                 example_inputs: Any, vocab_size: int | None) -> None:
        self.model, self.device = model, device
        if example_inputs is None:
            inputs: Any = _dummy_inputs(model, spec, vocab_size)
            self.batch_size, self.sequence_length = spec.batch_size, spec.sequence_length
        else:
            inputs = example_inputs
            self.batch_size = _leading_dim(inputs) or spec.batch_size
            self.sequence_length = None
        self.inputs = _to_device(inputs, device)
        self.original_device = _model_device(model)
        self.modes = {module: module.training for module in model.modules()}

    def prepare(self) -> None:
        self.model.to(self.device)
        self.model.eval()

    def call(self) -> Any:
        if isinstance(self.inputs, Mapping):
            return self.model(**self.inputs)
        if isinstance(self.inputs, (tuple, list)):
            return self.model(*self.inputs)
        return self.model(self.inputs)

    def restore(self) -> None:
        self.model.to(self.original_device)
        for module, training in self.modes.items():
            module.training = training


def _summary(timings_ns: Sequence[int], bench: _Bench, spec: LatencySpec, device: torch.device,
             threads: int) -> Latency:
    ms = np.asarray(timings_ns, dtype=np.float64) / 1e6
    return Latency(
        p50_ms=float(np.percentile(ms, 50, method="linear")),
        p90_ms=float(np.percentile(ms, 90, method="linear")),
        mean_ms=float(ms.mean()),
        min_ms=float(ms.min()),
        repeats=spec.repeats,
        batch_size=bench.batch_size,
        sequence_length=bench.sequence_length,
        device=str(device),
        threads=threads,
    )
