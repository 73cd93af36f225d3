"""Latency as a benchmark: fixed inputs, repeats, percentiles, and nothing left changed."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_bert
from torch import nn
from transformers import BertForSequenceClassification

from autodistill.errors import ConfigError
from autodistill.evaluation import (
    Latency,
    LatencySpec,
    count_parameters,
    measure_latencies,
    measure_latency,
    model_size_mb,
)

# measured once: these tests count calls (the repeat-on-spread rule has its own tests, with a fake timer)
FAST = {"warmup": 2, "repeats": 20, "max_attempts": 1}


def bert(hidden: int = 16, layers: int = 1, heads: int = 2) -> BertForSequenceClassification:
    return tiny_bert(hidden=hidden, layers=layers, heads=heads, vocab=100, max_position_embeddings=128, dropout=None)


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))


def test_transformers_model_gives_ordered_percentiles_and_records_the_spec():
    spec = LatencySpec(batch_size=2, sequence_length=16, threads=1, **FAST)
    lat = measure_latency(bert(), spec)
    assert isinstance(lat, Latency)
    assert 0 < lat.min_ms <= lat.p50_ms <= lat.p90_ms
    assert lat.min_ms <= lat.mean_ms
    assert (lat.repeats, lat.batch_size, lat.sequence_length) == (20, 2, 16)
    assert (lat.device, lat.threads) == ("cpu", 1)
    assert set(lat.to_dict()) == {"p50_ms", "p90_ms", "mean_ms", "min_ms", "repeats",
                                  "batch_size", "sequence_length", "device", "threads",
                                  "spread", "attempts"}


def test_dummy_inputs_are_fixed_within_vocab_and_include_token_types():
    """The model sees one fixed (batch, seq) batch of ids < vocab_size, mask ones, types zeros."""
    seen: list[dict[str, torch.Tensor]] = []

    class Spy(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, **kwargs):
            seen.append({k: v.clone() for k, v in kwargs.items()})
            return self.inner(**kwargs)

    spec = LatencySpec(batch_size=3, sequence_length=10, **FAST)
    measure_latency(Spy(bert()), spec)
    assert len(seen) == 22  # warm-up + repeats
    first = seen[0]
    assert set(first) == {"input_ids", "attention_mask", "token_type_ids"}
    assert first["input_ids"].shape == (3, 10)
    assert 0 <= int(first["input_ids"].min()) and int(first["input_ids"].max()) < 100
    assert bool((first["attention_mask"] == 1).all()) and bool((first["token_type_ids"] == 0).all())
    assert all(torch.equal(s["input_ids"], first["input_ids"]) for s in seen)
    seen.clear()
    measure_latency(Spy(bert()), spec)  # same ids on a second call: a fixed generator
    assert torch.equal(seen[0]["input_ids"], first["input_ids"])


def test_plain_module_with_example_inputs_tuple_and_dict():
    model = mlp()
    lat = measure_latency(model, LatencySpec(**FAST), example_inputs=(torch.randn(4, 8),))
    assert lat.p50_ms <= lat.p90_ms and lat.batch_size == 4 and lat.sequence_length is None

    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp()

        def forward(self, x):
            return self.net(x)

    lat = measure_latency(Named(), LatencySpec(**FAST), example_inputs={"x": torch.randn(3, 8)})
    assert lat.batch_size == 3


def test_threads_are_set_during_the_call_and_restored_after():
    before = torch.get_num_threads()
    during: list[int] = []

    class Probe(nn.Module):
        def forward(self, x):
            during.append(torch.get_num_threads())
            return x * 2

    target = 2 if before != 2 else 1
    lat = measure_latency(Probe(), LatencySpec(threads=target, **FAST),
                          example_inputs=(torch.ones(1, 4),))
    assert set(during) == {target} and lat.threads == target
    assert torch.get_num_threads() == before


def test_threads_restored_even_when_the_model_raises():
    before = torch.get_num_threads()

    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        measure_latency(Broken(), LatencySpec(threads=3, **FAST), example_inputs=(torch.ones(1),))
    assert torch.get_num_threads() == before


def test_runs_in_eval_and_inference_mode_and_restores_training_mode_and_device():
    model = mlp().train()
    model[2].eval()  # one submodule deliberately in eval: its own flag must survive
    flags: list[tuple[bool, bool]] = []
    model.register_forward_hook(lambda m, i, o: flags.append((m.training,
                                                              torch.is_inference_mode_enabled())))
    measure_latency(model, LatencySpec(device="cpu", **FAST), example_inputs=(torch.randn(2, 8),))
    assert set(flags) == {(False, True)}
    assert model.training and model[0].training and not model[2].training
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_larger_model_measures_slower():
    """A behaviour, not a wall-clock threshold: 4 layers x 64 is slower than 1 layer x 16
    (measured again while the spread is high: this test shares a busy machine)."""
    spec = LatencySpec(batch_size=1, sequence_length=64, threads=1, warmup=2, repeats=20)
    small, large = bert(hidden=16, layers=1, heads=2), bert(hidden=64, layers=4, heads=4)
    assert measure_latency(large, spec).p50_ms > measure_latency(small, spec).p50_ms


def test_several_models_are_timed_interleaved_call_for_call():
    """measure_latencies: after the warm-up, every timed round calls each model once, in order,
    so both see the same machine load; each gets its own inputs and its own figures."""
    calls: list[str] = []

    class Tagged(nn.Module):
        def __init__(self, tag: str, inner: nn.Module):
            super().__init__()
            self.tag, self.inner, self.config = tag, inner, inner.config

        def forward(self, **kwargs):
            calls.append(self.tag)
            return self.inner(**kwargs)

    spec = LatencySpec(batch_size=1, sequence_length=32, threads=1, **FAST)
    student, teacher = Tagged("s", bert(hidden=16)), Tagged("t", bert(hidden=64, layers=4, heads=4))
    student.train()
    teacher.eval()
    fast, slow = measure_latencies([student, teacher], spec)
    assert calls[:4] == ["s", "s", "t", "t"]  # warm-up of each
    assert calls[4:] == ["s", "t"] * 20
    assert slow.p50_ms > fast.p50_ms and fast.repeats == slow.repeats == 20
    assert student.inner.training and not teacher.inner.training  # modes restored


@pytest.mark.parametrize("repeats", [0, 5, 19])
def test_fewer_than_twenty_repeats_rejected(repeats):
    with pytest.raises(ConfigError, match=r"repeats.*>= 20.*repeats=" + str(repeats)):
        LatencySpec(repeats=repeats)


@pytest.mark.parametrize(
    ("field", "value"),
    [("batch_size", 0), ("sequence_length", -1), ("warmup", -1), ("threads", 0),
     ("batch_size", 1.5), ("repeats", True)],
)
def test_bad_spec_values_name_the_field_and_value(field, value):
    with pytest.raises(ConfigError, match=rf"{field}.*{field}={value!r}"):
        LatencySpec(**{field: value})


def test_bad_device_string_rejected():
    with pytest.raises(ConfigError, match="evaluation.latency.device"):
        LatencySpec(device="tpu-please")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_a_clear_config_error():
    spec = LatencySpec(device="cuda", **FAST)  # valid as a spec: it may run elsewhere
    with pytest.raises(ConfigError, match=r"evaluation\.latency\.device.*CUDA is not available"):
        measure_latency(mlp(), spec, example_inputs=(torch.randn(1, 8),))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_measurement_returns_model_to_cpu():
    model = mlp()
    lat = measure_latency(model, LatencySpec(device="cuda", **FAST),
                          example_inputs=(torch.randn(2, 8),))
    assert lat.device.startswith("cuda") and lat.p50_ms <= lat.p90_ms
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_plain_module_without_inputs_or_vocab_is_rejected():
    with pytest.raises(ConfigError, match="example_inputs"):
        measure_latency(mlp(), LatencySpec(**FAST))


def test_sequence_longer_than_positions_is_rejected():
    with pytest.raises(ConfigError, match="max_position_embeddings=128"):
        measure_latency(bert(), LatencySpec(sequence_length=200, **FAST))


def test_count_parameters_and_size_exact_on_linear():
    layer = nn.Linear(10, 5)  # 50 weights + 5 biases, float32
    assert count_parameters(layer) == 55
    assert model_size_mb(layer) == 55 * 4 / 2**20
    with_buffer = nn.BatchNorm1d(4)  # 8 params (fp32) + running mean/var (fp32) + count (int64)
    assert count_parameters(with_buffer) == 8
    assert model_size_mb(with_buffer) == (8 * 4 + 8 * 4 + 8) / 2**20
    assert model_size_mb(nn.Linear(10, 5).double()) == 55 * 8 / 2**20
