"""The vision example (scripts/example_vision_digits.py): a plain-PyTorch CNN teacher, searched CNN
students, flash distillation of feature maps through 1x1-convolution matchers, paired latency."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna
from optuna.trial import TrialState

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "example_vision_digits.py"


def _example():
    spec = importlib.util.spec_from_file_location("example_vision_digits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_digits_search_runs_and_records_accuracy_latency_and_speedup(tmp_path, capsys):
    example = _example()
    out = tmp_path / "digits"
    assert example.main(["--trials", "2", "--epochs", "0.3", "--flash-steps", "2", "--teacher-epochs", "2",
                         "--latency-repeats", "20", "--out", str(out), "--quiet"]) == 0
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{out / 'study.db'}")
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert done and all(t.user_attrs["latency_p50_ms"] > 0 and t.user_attrs["speedup"] > 0 for t in done)
    assert all(0 <= t.values[0] <= 1 for t in done)
    assert "teacher {'channels': 64, 'depth': 4}: validation accuracy" in capsys.readouterr().out


def test_feature_maps_of_other_widths_are_bridged_by_a_1x1_convolution():
    from autodistill import Distiller

    example = _example()
    data = example.digits()
    teacher, student = example.ConvNet(**example.TEACHER), example.ConvNet(8, 2)
    distiller = Distiller(teacher, student, example.plan(2, epochs=0.05, flash_steps=1), quiet=True,
                          adaptor=example.DataAdaptor(pass_labels_to_student=False))
    before = {k: v.clone() for k, v in student.state_dict().items()}
    distiller.fit(data["train"])
    assert {spec.kind for spec in distiller.matchers.specs.values()} == {"conv1x1"}
    assert any(not v.equal(before[k]) for k, v in student.state_dict().items())
