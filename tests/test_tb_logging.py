"""Evaluation during training, TensorBoard event files and epoch counting, for `Distiller.fit` and
for `DistillationTrainer.distill` (TrainingArguments eval_strategy, logging_steps, report_to)."""

from __future__ import annotations

import copy
import sys

import pytest
import torch
from conftest import toy_batches
from test_trainer import KD_CONFIG, ToyTask, arguments, bert

from autodistill import ConfigError, Distiller, load_distillation_plan
from autodistill.config.loader import load_distillation_section
from autodistill.distill.trainer import DistillationTrainer
from autodistill.evaluation import accuracy
from autodistill.preflight import check_tensorboard


def plan(**extra):
    return {"seed": 5, "progress": False, "optimizer": {"name": "AdamW", "learning_rate": 1e-2},
            "flash_distillation": {"block_names": ["bert.encoder.layer.0"],
                                   "layer_mappings_for_knowledge_transfer": [
                                       [["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]]],
                                   "loss_types": [["MSE"]], "train_steps": [3]},
            "regular_distillation": {"train_steps": 6, "loss_types": ["KL", "CE"], "temperature": 2.0},
            **extra}


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_a_positional_dev_loader_is_evaluated_at_each_stage_end(teacher, student):
    dev = toy_batches(2, 16, seed=8)
    result = Distiller(teacher, student, plan()).fit(toy_batches(4, 8), dev)
    assert [(e.stage, e.global_step) for e in result.evaluations] == [
        ("flash[0]:bert.encoder.layer.0", 3), ("regular", 9)]
    assert result.evaluations[-1].metrics == {"validation": {"accuracy": accuracy(student, dev)}}


def test_several_sets_every_eval_every_steps_with_an_eval_function(teacher, student):
    sets = {"dev": toy_batches(2, 8, seed=8), "test": toy_batches(1, 8, seed=9)}
    seen = []

    def batches_seen(model, loader):
        seen.append(model.training)
        return {"batches": len(list(loader)), "mean_loss": 0.5}

    result = Distiller(teacher, student, plan(eval_every_steps=2)).fit(toy_batches(4, 8), sets,
                                                                      eval_fn=batches_seen)
    assert [e.global_step for e in result.evaluations] == [2, 3, 4, 6, 8, 9]
    assert all(e.metrics == {"dev": {"batches": 2, "mean_loss": 0.5}, "test": {"batches": 1, "mean_loss": 0.5}}
               for e in result.evaluations)
    assert seen and all(seen)  # the eval function gets the student as training leaves it
    assert student.training


def test_evaluation_changes_nothing_in_training(teacher):
    """Same losses and weights with and without evaluation (dropout on: RNG untouched; whole
    forwards: the stage's truncating hooks are off while evaluating)."""
    from test_checkpoints import dropout_bert

    runs = []
    for dev in (None, toy_batches(2, 8, seed=8)):
        student = dropout_bert()
        result = Distiller(copy.deepcopy(teacher), student, plan(eval_every_steps=1)).fit(toy_batches(4, 8), dev)
        runs.append((result.losses, student.state_dict(), result.evaluations))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(t, runs[1][1][n]) for n, t in runs[0][1].items())
    assert len(runs[1][2]) == 9 and not runs[0][2]


def test_epochs_are_counted_in_loader_passes(teacher, student):
    from autodistill import DistillationCallback

    class Epochs(DistillationCallback):
        def __init__(self):
            self.epochs = []

        def on_step_end(self, state, control):
            self.epochs.append(state.epoch)

    epochs = Epochs()
    Distiller(teacher, student, plan(), callbacks=[epochs]).fit(toy_batches(4, 8))
    assert epochs.epochs == [k / 4 for k in range(1, 10)]


def test_tensorboard_event_files_hold_the_loss_terms_rate_norm_speed_and_metrics(teacher, student, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard package (autodistill-nas[tensorboard]) is missing")
    folder = tmp_path / "tb"
    config = plan(logging={"tensorboard": str(folder), "every_steps": 1})
    result = Distiller(teacher, student, config).fit(toy_batches(4, 8), toy_batches(2, 8, seed=8))
    scalars = events(folder)
    regular = [t for t in scalars if t.startswith("regular/")]
    assert {"regular/loss", "regular/learning_rate", "regular/grad_norm", "regular/steps_per_second",
            "regular/epoch"} <= set(regular)
    assert len(regular) >= 7  # and the loss terms
    assert [v for _, v in scalars["regular/loss"]] == pytest.approx(result.stages[1].losses)
    assert [s for s, _ in scalars["regular/loss"]] == list(range(4, 10))
    assert all(v > 0 for _, v in scalars["regular/grad_norm"])
    assert [s for s, _ in scalars["eval/validation/accuracy"]] == [3, 9]


def test_tensorboard_every_steps_thins_the_scalars(teacher, student, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard package (autodistill-nas[tensorboard]) is missing")
    Distiller(teacher, student, plan(logging={"tensorboard": str(tmp_path), "every_steps": 3})).fit(toy_batches(4, 8))
    assert [s for s, _ in events(tmp_path)["regular/loss"]] == [6, 9]


def test_tensorboard_without_the_package_is_refused_at_the_edge_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if missing
    section = load_distillation_section(plan(logging={"tensorboard": True}))  # config imports no torch
    with pytest.raises(ConfigError, match=r"^distillation\.logging\.tensorboard: .*needs the tensorboard "
                                          r"package.*autodistill-nas\[tensorboard\]"):
        check_tensorboard(section, key="distillation")
    check_tensorboard(load_distillation_section(plan()), key="distillation")  # not asked for: no check


def test_the_trainer_evaluates_logs_epochs_and_writes_tensorboard(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard package (autodistill-nas[tensorboard]) is missing")
    args = arguments(tmp_path, max_steps=12, learning_rate=5e-3, logging_steps=2, eval_strategy="steps",
                     eval_steps=4, report_to=["tensorboard"], max_grad_norm=1.0)
    trainer = DistillationTrainer(model=bert(seed=1), args=args, train_dataset=ToyTask(n=32),
                                  eval_dataset=ToyTask(n=16, seed=1))
    trainer.distill(distillation_config=KD_CONFIG, teacher_model=bert(hidden=32, layers=2, heads=4, seed=2))
    history = trainer.state.log_history
    steps = [e for e in history if "distill_loss" in e]
    assert [e["epoch"] for e in steps] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]  # 4 batches an epoch
    assert all("grad_norm" in e for e in steps)
    assert [e["step"] for e in history if "eval_accuracy" in e] == [4, 8, 12]
    scalars = events(tmp_path / "out" / "runs")
    assert [s for s, _ in scalars["regular/loss"]] == [2, 4, 6, 8, 10, 12]
    assert "eval/eval/accuracy" in scalars


def test_the_trainer_takes_bf16_and_refuses_it_where_it_would_be_slow(tmp_path, monkeypatch):
    args = arguments(tmp_path, max_steps=2, bf16=True)
    trainer = DistillationTrainer(model=bert(seed=1), args=args, train_dataset=ToyTask(n=16))
    from autodistill import precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    with pytest.raises(ConfigError, match="bf16 on this CPU .* about 10x slower"):
        trainer.distill(distillation_config=KD_CONFIG, teacher_model=bert(hidden=32, layers=2, heads=4, seed=2))
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    trainer.distill(distillation_config=KD_CONFIG, teacher_model=bert(hidden=32, layers=2, heads=4, seed=2))
    assert trainer.distiller.plan.precision == "bf16"


def test_the_distill_command_evaluates_during_training_and_logs_to_its_output(workspace, tmp_path, capsys):
    import json

    from test_cli_distill import _config

    from autodistill.cli import main

    pytest.importorskip("tensorboard", reason="the tensorboard package (autodistill-nas[tensorboard]) is missing")
    out = tmp_path / "student"
    config = _config(workspace, out)
    config.write_text(config.read_text().replace(
        "  progress: false",
        "  progress: false\n  eval_every_steps: 5\n  logging: {tensorboard: true, every_steps: 2}"))
    assert main(["distill", str(config), "--quiet"]) == 0
    summary = json.loads((out / "distillation.json").read_text())
    assert [(e["stage"], e["global_step"]) for e in summary["evaluations"]] == [
        ("flash[0]:bert.encoder.layer.0", 4), ("regular", 5), ("regular", 10)]
    assert summary["evaluations"][-1]["metrics"]["validation"]["accuracy"] == summary["accuracy"]
    scalars = events(out / "tensorboard")
    assert [s for s, _ in scalars["regular/loss"]] == [6, 8, 10]
    assert [s for s, _ in scalars["eval/validation/accuracy"]] == [4, 5, 10]


@pytest.mark.parametrize("value", ["", "  ", 3, ["runs"]])
def test_tensorboard_takes_true_false_or_a_folder_name(value):
    with pytest.raises(ConfigError, match=r"logging\.tensorboard: give true .*, false, or a folder name"):
        load_distillation_plan(plan(logging={"tensorboard": value}))
