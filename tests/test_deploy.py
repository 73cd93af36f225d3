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
