"""Precision: fp32 | bf16 | fp16 for distillation, fine-tuning and evaluation; refused where it
cannot help (bf16 on a CPU without bf16 hardware unless forced, fp16 on a CPU), before any work."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from conftest import tiny_bert, toy_batches

from autodistill import ConfigError, Distiller, load_distillation_plan
from autodistill import precision as precision_module
from autodistill.config.loader import load_distillation_section
from autodistill.distill.finetune import fine_tune_plan
from autodistill.evaluation import accuracy
from autodistill.preflight import check_precision

NO_GPU = "no CUDA GPU here: the CUDA autocast and fp16 gradient-scaler paths run only on one"


def regular(**extra):
    return {"seed": 3, "progress": False, "device": "cpu", "optimizer": {"name": "AdamW", "learning_rate": 1e-2},
            "regular_distillation": {"train_steps": 6, "loss_types": ["KL", "CE"], "temperature": 2.0},
            **extra}


@pytest.fixture
def no_bf16_hardware(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: False)


def test_bf16_on_a_cpu_without_bf16_hardware_is_refused_at_the_edge_with_the_measured_reason(no_bf16_hardware):
    section = load_distillation_section(regular(precision="bf16"))  # config checks no hardware
    with pytest.raises(ConfigError) as error:
        check_precision(section, key="distillation")
    message = str(error.value)
    assert message.startswith("distillation.precision: ") and "about 10x slower than fp32" in message
    assert "precision_force: true" in message and "\n" not in message


def test_bf16_forced_on_such_a_cpu_is_accepted(no_bf16_hardware):
    section = load_distillation_section(regular(precision="bf16", precision_force=True))
    check_precision(section, key="distillation")
    plan = section.plan()
    assert plan.precision == "bf16" and plan.precision_force


def test_fp16_on_a_cpu_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="fp16 on cpu brings no training benefit.*use precision: fp32"):
        check_precision(load_distillation_section(regular(precision="fp16")), key="distillation")


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ConfigError, match="precision.*'fp32', 'bf16' or 'fp16'"):
        load_distillation_plan(regular(precision="16"))


def test_a_plan_built_in_python_is_checked_by_the_distiller(teacher, student, no_bf16_hardware):
    plan = dataclasses.replace(load_distillation_plan(regular()), precision="bf16")
    with pytest.raises(ConfigError, match="precision: bf16 on this CPU"):
        Distiller(teacher, student, plan)


def test_the_cpu_capability_is_read_from_the_machine():
    from pathlib import Path

    flags = Path("/proc/cpuinfo").read_text().split()
    assert precision_module.cpu_has_bf16() == (
        "avx512_bf16" in flags or "amx_bf16" in flags
        or torch.backends.cpu.get_cpu_capability() == "AVX512_BF16")


def test_bf16_distillation_keeps_fp32_master_weights_and_follows_fp32(teacher, student):
    runs = {}
    for precision in ("fp32", "bf16"):
        s = copy.deepcopy(student)
        result = Distiller(copy.deepcopy(teacher), s, regular(precision=precision, precision_force=True)).fit(
            toy_batches(4, 8))
        assert all(p.dtype == torch.float32 for p in s.parameters())
        runs[precision] = result.losses
    assert runs["bf16"] != runs["fp32"]  # autocast did run the forwards in bf16
    assert max(abs(a - b) for a, b in zip(runs["bf16"], runs["fp32"])) < 0.1


def test_evaluation_in_bf16_agrees_with_fp32(teacher):
    batches = toy_batches(4, 16, seed=9)
    fp32 = accuracy(teacher, batches)
    assert abs(accuracy(teacher, batches, precision="bf16") - fp32) <= 1 / 16


def test_the_fine_tune_plan_carries_the_precision():
    plan = fine_tune_plan(epochs=1, learning_rate=1e-3, warmup_ratio=0.0, weight_decay=0.0, seed=0,
                          progress=False, precision="bf16", precision_force=True)
    assert plan.precision == "bf16" and plan.precision_force


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_mixed_precision_trains_with_fp32_weights(precision):
    teacher, student = tiny_bert(hidden=32, layers=4, heads=4), tiny_bert(hidden=16, layers=2, heads=2, seed=1)
    distiller = Distiller(teacher, student, regular(precision=precision, device="cuda"))
    result = distiller.fit(toy_batches(4, 8))
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert all(p.dtype == torch.float32 and p.is_cuda for p in student.parameters())


def test_the_fp16_scaler_path_trains_and_resumes_exactly(teacher, student, tmp_path, monkeypatch):
    """fp16 is refused on a CPU; with the refusal lifted, CPU fp16 autocast runs the CUDA path's
    gradient-scaler code (unscaled before clipping): finite losses, fp32 weights, the scaler's
    state in a checkpoint, and a resumed run ending with the uninterrupted run's weights."""
    from test_checkpoints import StopAt

    from autodistill.distill import distiller as distiller_module
    from autodistill.distill.checkpoint import latest

    monkeypatch.setattr(distiller_module, "precision_refusal", lambda *a, **k: None)
    plan = dataclasses.replace(load_distillation_plan(regular(max_grad_norm=1.0)), precision="fp16",
                               checkpoint_every_steps=2)
    whole = copy.deepcopy(student)
    result = Distiller(copy.deepcopy(teacher), whole, plan).fit(toy_batches(4, 8))
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert all(p.dtype == torch.float32 for p in whole.parameters())
    with pytest.raises(KeyboardInterrupt):
        Distiller(copy.deepcopy(teacher), copy.deepcopy(student), plan, callbacks=[StopAt(3)]).fit(
            toy_batches(4, 8), checkpoint_dir=tmp_path)
    saved = torch.load(latest(tmp_path) / "state.pt", weights_only=True)
    assert saved["scaler"]["scale"] > 0
    resumed = copy.deepcopy(student)
    again = Distiller(copy.deepcopy(teacher), resumed, plan).fit(toy_batches(4, 8), resume_from=tmp_path)
    assert again.losses == result.losses
    assert all(torch.equal(t, whole.state_dict()[n]) for n, t in resumed.state_dict().items())


def test_distill_refuses_a_precision_this_device_cannot_train_before_any_work(workspace, tmp_path, capsys):
    from test_cli_distill import _config

    from autodistill.cli import main

    path = _config(workspace, tmp_path / "out")
    fp16 = "  progress: false\n  precision: fp16\n  device: cpu\n"
    path.write_text(path.read_text().replace("  progress: false\n", fp16))
    assert main(["distill", str(path), "--quiet"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("autodistill: error: distillation.precision: fp16 on cpu")
    assert not (tmp_path / "out").exists()  # nothing loaded, trained or written
