"""Deployed runtime (evaluation.deployment): ONNX Runtime and int8 as what the study measures.

Tiny BERTs throughout: export and quantisation round trips, the search recording the deployed
figures beside the eager ones, screening on the deployed latency, the paired teacher timed in
the same runtime, and bad inputs through the CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from conftest import tiny_bert, toy_batches
from test_search import write_config

from autodistill.cli import main
from autodistill.evaluation.accuracy import accuracy
from autodistill.evaluation.deployment import DeploymentTarget, OnnxRuntimeModel, deploy, load_deployed

pytest.importorskip("onnxruntime", reason="deployment needs the onnx extra: pip install 'autodistill-nas[onnx]'")

LATENCY_LINE = "    latency: {batch_size: 1, warmup: 1, repeats: 20, threads: 1}"


def deployed_config(workspace: Path, out: Path, quantization: str = "dynamic_int8", extra: str = "") -> Path:
    deployment = f"\n    deployment: {{runtime: onnxruntime, quantization: {quantization}, calibration_batches: 2}}"
    return write_config(workspace, out, extra, **{LATENCY_LINE: LATENCY_LINE + deployment,
                                                  "max_trials: 4": "max_trials: 2"})


@pytest.fixture(scope="module")
def deployed_search(workspace, tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "run"
    config = deployed_config(workspace, out)
    assert main(["search", str(config), "--quiet"]) == 0
    return out, config, optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")


@pytest.mark.parametrize("quantization, tolerance", [("none", 1e-4), ("dynamic_int8", 0.05), ("static_int8", 0.15)])
def test_export_and_quantisation_round_trip(tmp_path, quantization, tolerance):
    model = tiny_bert(hidden=32, layers=2).eval()
    batches = toy_batches(3, 8)
    target = DeploymentTarget("onnxruntime", quantization)
    deployed = deploy(model, target, tmp_path, threads=1, calibration=batches[:2])
    assert isinstance(deployed, OnnxRuntimeModel) and (tmp_path / target.file_name).is_file()
    inputs = {k: v for k, v in batches[2].items() if k != "labels"}
    with torch.inference_mode():
        expected = model(**inputs).logits
    got = deployed(**inputs)["logits"]
    assert torch.allclose(got, expected, atol=tolerance * float(expected.abs().max()) + 1e-6)
    reopened = load_deployed(tmp_path, target, model.config, threads=1)  # the written file
    assert accuracy(reopened, batches) == accuracy(deployed, batches)


def test_the_search_records_deployed_figures_beside_the_eager_ones(deployed_search):
    out, _, study = deployed_search
    teacher = study.user_attrs["teacher"]
    for key in ("latency_ms", "eager_latency_ms", "accuracy", "eager_accuracy", "size_mb", "eager_size_mb"):
        assert teacher.get(key) is not None, key
    trained = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert trained
    for trial in trained:
        attrs = trial.user_attrs
        for key in ("latency_ms", "speedup", "eager_latency_ms", "eager_speedup", "accuracy", "eager_accuracy",
                    "test_accuracy", "eager_test_accuracy"):
            assert attrs.get(key) is not None, key
        # the objective is the deployed figure
        assert trial.values == [attrs["accuracy"], attrs["latency_ms"]]
        folder = Path(attrs["student_path"])
        assert (folder / "model.onnx").is_file() and (folder / "model.dynamic_int8.onnx").is_file()
    assert not any(p.name.startswith(".") for p in (out / "deployed").iterdir())  # no scratch left


def test_the_recorded_accuracy_is_the_written_graphs(deployed_search, workspace):
    """The int8 graph in the trial's folder scores what the study recorded (the same validation data)."""
    from autodistill.study.run import load_search_config
    from autodistill.study.task import DistillationTask

    out, config, study = deployed_search
    trial = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    task = DistillationTask(load_search_config(config), output_dir=out, quiet=True)
    target = DeploymentTarget("onnxruntime", "dynamic_int8")
    graph = load_deployed(Path(trial.user_attrs["student_path"]), target, task.teacher.config, threads=1)
    assert task.kind.evaluate(graph, task.validation_loader, device="cpu")["accuracy"] == trial.user_attrs["accuracy"]


def test_screening_uses_the_deployed_latency_paired_in_its_own_runtime(workspace, tmp_path, monkeypatch):
    """Fake timings: the eager student 10x faster than the eager teacher, the deployed one only 2x
    faster than the deployed teacher. With min_speedup 5 every architecture is screened out on its
    deployed speed-up, before training, and every pairing timed a deployed student with the
    deployed teacher (and an eager one with the eager teacher)."""
    import autodistill.study.task as task_module
    from autodistill.evaluation.latency import Latency

    pairs = []

    def fake(models, spec):
        student, teacher = models
        pairs.append((type(student).__name__, type(teacher).__name__))
        deployed = isinstance(student, OnnxRuntimeModel)
        ms = (5.0, 10.0) if deployed else (1.0, 10.0)
        return [Latency(p50_ms=m, p90_ms=m, mean_ms=m, min_ms=m, repeats=20, batch_size=1, sequence_length=12,
                        device="cpu", threads=1, spread=0.0) for m in ms]

    monkeypatch.setattr(task_module, "measure_latencies", fake)
    out = tmp_path / "run"
    config = deployed_config(workspace, out)
    small = {"[8, 16, 24]": "[8, 16]", "{low: 1, high: 2}": "{low: 1, high: 1}", "[2, 3, 4]": "[2]",
             "    max_trials: 2\n": "    max_trials: 2\n    constraints: {min_speedup: 5}\n"}
    text = config.read_text()
    for old, new in small.items():
        text = text.replace(old, new)
    config.write_text(text)
    assert main(["search", str(config), "--quiet"]) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    screened = [t for t in study.trials if "screened_reason" in t.user_attrs]
    assert screened and not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for trial in screened:
        assert trial.user_attrs["screened_reason"].startswith("speed-up 2x < 5x")
        assert trial.user_attrs["speedup"] == 2.0 and trial.user_attrs["eager_speedup"] == 10.0
        assert "train_seconds" not in trial.user_attrs
    assert set(pairs) == {("OnnxRuntimeModel", "OnnxRuntimeModel"), ("BertForSequenceClassification",
                                                                     "BertForSequenceClassification")}


@pytest.mark.parametrize("deployment, pattern", [
    ("{runtime: tensorrt}", r"evaluation\.deployment\.runtime: .*'torch' or 'onnxruntime'"),
    ("{runtime: onnxruntime, quantization: int4}", r"evaluation\.deployment\.quantization: .*'dynamic_int8'"),
    ("{quantization: dynamic_int8}", r"evaluation\.deployment: .*set evaluation\.deployment\.runtime: onnxruntime"),
])
def test_bad_deployment_is_one_line_before_anything_runs(workspace, tmp_path, capsys, deployment, pattern):
    import re

    out = tmp_path / "run"
    config = write_config(workspace, out, **{LATENCY_LINE: f"{LATENCY_LINE}\n    deployment: {deployment}"})
    assert main(["search", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("autodistill: error: ") and re.search(pattern, err[0]), err
    assert not out.exists()


def test_onnxruntime_missing_names_the_extra(workspace, tmp_path):
    """onnxruntime hidden from the import system in a fresh interpreter: the config is refused in one line."""
    out = tmp_path / "run"
    config = deployed_config(workspace, out)
    code = ("import importlib.util, sys\n"
            "real = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda name, *a: (None if name.split('.')[0] == 'onnxruntime'\n"
            "                                              else real(name, *a))\n"
            "sys.modules['onnxruntime'] = None\n"
            "from autodistill.cli import main\n"
            f"sys.exit(main(['search', {str(config)!r}, '--quiet']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(err) == 1 and "evaluation.deployment" in err[0] and "pip install 'autodistill-nas[onnx]'" in err[0], err
    assert not out.exists()


def test_export_writes_the_int8_graph_checked_against_the_study(deployed_search, tmp_path, capsys):
    out, config, study = deployed_search
    trial = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    target = tmp_path / "shipped"
    assert main(["export", str(config), "--trial", str(trial.number), "--quantization", "dynamic_int8",
                 "--out", str(target)]) == 0
    assert "as the study recorded" in capsys.readouterr().out
    assert (target / "model.onnx").is_file() and (target / "model.dynamic_int8.onnx").is_file()
    card = (target / "README.md").read_text()
    recorded, eager = trial.user_attrs["accuracy"], trial.user_attrs["eager_accuracy"]
    assert "## Deployment" in card and "quantisation dynamic_int8" in card
    assert "Runtime of the metrics above: ONNX" in card
    assert f"{recorded:.4g} re-measured from this file (the search recorded {recorded:.4g})" in card
    assert f"eager PyTorch {eager:.4g}" in card


def test_export_quantization_needs_the_config(deployed_search, tmp_path, capsys):
    out, _, _ = deployed_search
    assert main(["export", "--output-dir", str(out), "--best", "fastest", "--quantization", "static_int8",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--quantization" in err[0] and "give CONFIG.yaml" in err[0]
    assert not (tmp_path / "o").exists()


def test_an_export_failure_names_the_operator(tmp_path, monkeypatch):
    from autodistill.errors import ExportError

    def unsupported(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::fancy_attention' to ONNX opset version 17 is not supported.")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    with pytest.raises(ExportError, match=r"operator aten::fancy_attention is not supported; set "
                                          r"evaluation\.deployment\.runtime: torch"):
        deploy(tiny_bert(), DeploymentTarget("onnxruntime", "dynamic_int8"), tmp_path, threads=1)


def test_the_table_gains_the_eager_column_pair(deployed_search, capsys):
    _, config, _ = deployed_search
    assert main(["show", str(config)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "eager latency p50" in header and "eager accuracy" in header
