"""Latency as a benchmark: fixed inputs, fixed threads, warm-up, many timed repeats.

Not 1000 / samples-per-second of an evaluation loop: a model is timed on one fixed
batch (batch size x sequence length), in eval mode under `torch.inference_mode()`,
with a set number of intra-op threads, after `warmup` untimed calls, over `repeats`
timed calls, on the device the config names. The result is the median (p50) and the
90th percentile, plus mean and minimum.

A busy machine shows in the spread of the timed calls: another process that takes the CPU
now and then stretches some calls and not others. The spread is the interquartile range
over the median, (p75 - p25) / p50: about 0.1-0.3 for a tiny model on a quiet 2-core CPU,
1 to 15 with busy loops beside it. A measurement whose spread (of any model timed in it)
is above `max_spread` is taken again, up to `max_attempts` measurements in all, and the
steadiest one is kept; each result records its `spread` and `attempts`.

Another process adds time to a call and never takes any away, and it adds more to long
calls than to short ones: a call that outlasts the scheduler's slice is cut in the middle,
a short one often runs whole. So the medians of two models timed call for call do not keep
their ratio under load, and their fastest calls (the ones the machine disturbed least;
noise only adds, so the minimum is the robust estimator: Chen & Revels, "Robust benchmarking
in noisy environments", 2016) do better. Measured on the 2-core CPU (load average 7 from
other work), tiny BERTs of hidden 16 against a 2-layer teacher, 30 interleaved rounds, two
busy loops beside it: the speed-up of a 12-layer student from the medians read 0.04x, from
the minima 0.27-0.28x (0.25-0.26x without the busy loops); 1 and 4 layers held either way
(1.5x, 0.7x). Inside a tiny search under the same busy loops (3 runs, quiet runs beside
them), the speed-ups from the fastest call of all attempts read 1.48-1.49x, 0.65x and
0.26-0.32x for 1, 4 and 12 layers (quiet 1.48-1.51x, 0.64-0.65x, 0.27-0.31x), where the
medians gave 0.04-0.28x for 12 layers; minima of one attempt only had read 0.08-0.11x for
12 layers in 2 runs of 5 (no call of that attempt ran whole). So a ratio of models timed
together is taken between their minima over all attempts (`paired_ratio`); the study turns
it into milliseconds at a reference teacher latency (autodistill/study/task.py).

    spec = LatencySpec(batch_size=1, sequence_length=128, threads=2)
    lat = measure_latency(student, spec)          # a transformers model: dummy token ids
    lat = measure_latency(cnn, spec, example_inputs=(torch.randn(1, 3, 32, 32),))
    student_lat, teacher_lat = measure_latencies([student, teacher], spec)   # interleaved: a fair ratio
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from autodistill.data.adaptor import to_device
from autodistill.errors import ConfigError

MIN_REPEATS = 20
_INPUT_SEED = 0
MAX_SPREAD = 0.5   # (p75 - p25) / p50 above which a measurement is taken again
MAX_ATTEMPTS = 3
Timer = Callable[[], int]  # nanoseconds, like time.perf_counter_ns


def _check_int(name: str, value: Any, low: int, rule: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(
            f"evaluation.latency.{name} must be an integer {rule}, but got {name}={value!r}; "
            f"set it to {low} or more"
        )


@dataclass(frozen=True)
class LatencySpec:
    """How to time a model: input shape, warm-up, repeats, threads and device.

    `threads=None` keeps torch's current intra-op thread count. A measurement whose spread
    ((p75 - p25) / p50 of any model in it) is above `max_spread` is taken again, up to
    `max_attempts` measurements in all (1: measure once, whatever the spread).
    """

    batch_size: int = 1
    sequence_length: int = 128
    warmup: int = 5
    repeats: int = 30
    threads: int | None = None
    device: str = "cpu"
    max_spread: float = MAX_SPREAD
    max_attempts: int = MAX_ATTEMPTS

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
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) \
                or self.max_attempts < 1:
            raise ConfigError(
                f"LatencySpec.max_attempts must be an integer >= 1 (measurements taken when the "
                f"spread is high), but got max_attempts={self.max_attempts!r}; set it to 1 or more"
            )
        if isinstance(self.max_spread, bool) or not isinstance(self.max_spread, (int, float)) \
                or not self.max_spread > 0:
            raise ConfigError(
                f"LatencySpec.max_spread must be a positive number ((p75 - p25) / p50 of the timed "
                f"calls), but got max_spread={self.max_spread!r}; set it to e.g. {MAX_SPREAD}"
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
    the intra-op thread count in force during the measurement; `spread` is (p75 - p25) / p50
    of the kept measurement and `attempts` how many measurements were taken; `min_ms` is the
    fastest call of all of them, the other figures are the kept measurement's.
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
    spread: float
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters())


def model_size_mb(model: nn.Module) -> float:
    """Bytes of parameters and buffers, in MiB (2**20 bytes)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def resolve_latency_device(name: str, *, key: str = "evaluation.latency.device") -> torch.device:
    """The device `name` names, if this machine has it; `key` is the config key that gave it."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key} is {name!r}, which is not a device name; use 'cpu', 'cuda', "
                          "'cuda:0' or 'mps'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{key} is {name!r} but CUDA is not available on this "
                f"machine; set {key} to 'cpu' or run on a machine with a GPU"
            )
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"{key} is {name!r} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); choose an index below that"
            )
        device = torch.device("cuda", index)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"{key} is {name!r} but MPS is not available on this machine; "
            f"set {key} to 'cpu'"
        )
    elif device.type != "cpu":
        raise ConfigError(f"{key} is {name!r}; the devices supported are 'cpu', 'cuda', 'cuda:N' and 'mps'")
    return device


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for buffer in model.buffers():
        return buffer.device
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


def _leading_dim(inputs: Any) -> int | None:
    values = inputs.values() if isinstance(inputs, Mapping) else (
        inputs if isinstance(inputs, (tuple, list)) else (inputs,))
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() >= 1:
            return int(value.shape[0])
    return None


def measure_latency(model: nn.Module, spec: LatencySpec | None = None, *,
                    example_inputs: Mapping[str, torch.Tensor] | tuple | torch.Tensor | None = None,
                    vocab_size: int | None = None, timer: Timer = time.perf_counter_ns) -> Latency:
    """Time `model` on one fixed batch and return p50/p90/mean/min in ms per call.

    Inputs: `example_inputs` when given (a dict of tensors is passed as keyword
    arguments, a tuple/list as positional arguments, a tensor as the one argument);
    otherwise dummy token ids of shape (batch_size, sequence_length) drawn once from a
    fixed generator below `vocab_size` or the model's `config.vocab_size`, an all-ones
    `attention_mask`, and zero `token_type_ids` when the config has `type_vocab_size`.

    The model and inputs go to `spec.device`; the thread count is set to
    `spec.threads` for the measurement; each of `repeats` timed calls is read with
    `timer` (`time.perf_counter_ns`; after `torch.cuda.synchronize()` on CUDA). Percentiles
    use numpy's 'linear' method (interpolation between the closest ranks), so p50 is the
    ordinary median. A measurement whose spread is above `spec.max_spread` is taken again
    (module docstring). Afterwards the thread count, every submodule's training flag and
    the model's device are restored.
    """
    return measure_latencies([model], spec, example_inputs=example_inputs, vocab_size=vocab_size,
                             timer=timer)[0]


def measure_latencies(models: Sequence[nn.Module], spec: LatencySpec | None = None, *,
                      example_inputs: Mapping[str, torch.Tensor] | tuple | torch.Tensor | None = None,
                      vocab_size: int | None = None, timer: Timer = time.perf_counter_ns) -> list[Latency]:
    """Time several models on the same terms, interleaved: each timed round calls every
    model once, so a machine that gets busier or quieter during the measurement slows all
    of them alike and their ratio (a student's speed-up over its teacher) stays fair.
    Each model gets its own inputs as `measure_latency` describes. When the spread of any
    model is above `spec.max_spread`, all of them are timed again (the pairing holds), up
    to `spec.max_attempts` measurements; the one whose worst spread is lowest is kept, with
    `min_ms` the fastest call of all of them (more rounds, more calls the machine left whole)."""
    spec = spec or LatencySpec()
    device = resolve_latency_device(spec.device)
    benches = [_Bench(model, spec, device, example_inputs, vocab_size) for model in models]
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda *a, **k: None)
    previous_threads = torch.get_num_threads()
    kept: list[Latency] = []
    fastest_ns = [float("inf")] * len(benches)
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
            for attempt in range(1, spec.max_attempts + 1):  # noqa: B007 (read after the loop)
                timings_ns: list[list[int]] = [[] for _ in benches]
                for _ in range(spec.repeats):
                    for bench, timings in zip(benches, timings_ns):
                        start = timer()
                        bench.call()
                        sync(device)
                        timings.append(timer() - start)
                measured = [_summary(timings, bench, spec, device, threads)
                            for bench, timings in zip(benches, timings_ns)]
                fastest_ns = [min(best, *timings) for best, timings in zip(fastest_ns, timings_ns)]
                if not kept or _worst_spread(measured) < _worst_spread(kept):
                    kept = measured
                if _worst_spread(measured) <= spec.max_spread:
                    break
    finally:
        for bench in benches:
            bench.restore()
        torch.set_num_threads(previous_threads)
    return [replace(latency, min_ms=fastest / 1e6, attempts=attempt)
            for latency, fastest in zip(kept, fastest_ns)]


def _worst_spread(latencies: Sequence[Latency]) -> float:
    return max(latency.spread for latency in latencies)


def paired_ratio(model: Latency, reference: Latency) -> float:
    """How many times longer `model` takes than `reference`, both timed in one interleaved
    measurement: the ratio of their fastest calls (`min_ms`, over every attempt), the ones
    another process disturbed least
    (module docstring), so a load beside the benchmark leaves it where a quiet machine puts it."""
    return model.min_ms / reference.min_ms


class _Bench:
    """One model set up for timing: its inputs on the device, eval mode; `restore` undoes it."""

    def __init__(self, model: nn.Module, spec: LatencySpec, device: torch.device,
                 example_inputs: Any, vocab_size: int | None) -> None:
        self.model, self.device = model, device
        self.sequence_length: int | None  # None: the caller's own example inputs
        if example_inputs is None:
            inputs: Any = _dummy_inputs(model, spec, vocab_size)
            self.batch_size, self.sequence_length = spec.batch_size, spec.sequence_length
        else:
            inputs = example_inputs
            self.batch_size = _leading_dim(inputs) or spec.batch_size
            self.sequence_length = None
        self.inputs = to_device(inputs, device)
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
    p25, p50, p75, p90 = (float(q) for q in np.percentile(ms, [25, 50, 75, 90], method="linear"))
    return Latency(
        p50_ms=p50,
        p90_ms=p90,
        mean_ms=float(ms.mean()),
        min_ms=float(ms.min()),
        repeats=spec.repeats,
        batch_size=bench.batch_size,
        sequence_length=bench.sequence_length,
        device=str(device),
        threads=threads,
        spread=(p75 - p25) / p50 if p50 > 0 else 0.0,
    )
