"""DistillationTrainer: a transformers.Trainer whose distill() runs a Distiller (seed 000)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_bert
from transformers import BertForSequenceClassification, TrainingArguments

from autodistill.config.plan import DistillationPlan, LogitKD, OptimizerSpec, Stage
from autodistill.distill.trainer import DistillationTrainer
from autodistill.errors import ConfigError
from autodistill.losses.matchers import FeatureMatchers

KD_CONFIG = {"train": {"criterion": {"KnowledgeDistillationLoss": {
    "temperature": 2.0, "loss_types": ["CE", "CE"], "loss_weights": [0.5, 0.5]}}}}


def bert(hidden: int = 16, layers: int = 1, heads: int = 2, seed: int = 0) -> BertForSequenceClassification:
    return tiny_bert(hidden=hidden, layers=layers, heads=heads, seed=seed, dropout=None)


class ToyTask(torch.utils.data.Dataset):
    """label = (first token > 30); counts item reads so a test can tell no batch was drawn."""

    def __init__(self, n: int = 64, length: int = 8, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 60, (n, length), generator=g)
        self.reads = 0

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        self.reads += 1
        ids = self.ids[i]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "labels": torch.tensor(int(ids[0] > 30))}


def arguments(tmp_path, **overrides) -> TrainingArguments:
    values = dict(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True,
                  per_device_train_batch_size=8, disable_tqdm=True, logging_steps=5)
    values.update(overrides)
    return TrainingArguments(**values)


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_seed_000_distill_returns_a_trained_student_and_loss_falls(tmp_path):
    """Seed 000's call: distill() returns the Trainer's own model, trained (weights moved,
    mean loss of the last 5 steps below the first 5), the teacher untouched, the run kept
    on the trainer and the final loss logged through Trainer.log; no matchers file saved."""
    student, teacher = bert(seed=1), bert(hidden=32, layers=2, heads=4, seed=2)
    before_student, before_teacher = params(student), params(teacher)
    trainer = DistillationTrainer(model=student, args=arguments(tmp_path, max_steps=30, learning_rate=5e-3),
                                  train_dataset=ToyTask())

    model = trainer.distill(distillation_config=KD_CONFIG, teacher_model=teacher)

    assert model is student is trainer.model
    after = params(model)
    assert any(not torch.equal(before_student[k], after[k]) for k in after)
    assert all(torch.equal(before_teacher[k], v) for k, v in params(teacher).items())
    losses = trainer.distillation_result.losses
    assert len(losses) == 30 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    stage = trainer.distiller.plan.stages[0]
    assert stage.logit_kd is not None and stage.logit_kd.temperature == 2.0
    logged = [e for e in trainer.state.log_history if "distill_final_loss" in e]
    assert logged and logged[-1]["distill_final_loss"] == pytest.approx(losses[-1])
    assert any("distill_loss" in e for e in trainer.state.log_history)  # every logging_steps
    assert trainer.state.global_step == 30

    trainer.save_model(str(tmp_path / "saved"))
    assert (tmp_path / "saved" / "config.json").is_file()
    assert not (tmp_path / "saved" / FeatureMatchers.FILENAME).exists()


def test_training_arguments_fill_what_the_config_leaves_unset(tmp_path):
    """Unset in the config: lr, weight decay, betas, schedule, warmup, clipping (0 -> none),
    seed, device, progress and the step count come from TrainingArguments."""
    args = arguments(tmp_path, learning_rate=3e-3, max_steps=7, weight_decay=0.01, adam_beta1=0.8,
                     lr_scheduler_type="cosine", warmup_steps=2, max_grad_norm=0.0, seed=7)
    trainer = DistillationTrainer(model=bert(), args=args, train_dataset=ToyTask(n=32))
    trainer.distill(distillation_config=KD_CONFIG, teacher_model=bert(hidden=32, heads=4, seed=3))

    plan = trainer.distiller.plan
    (stage,) = plan.stages
    assert stage.optimizer.name == "AdamW" and stage.optimizer.learning_rate == 3e-3
    assert stage.optimizer.weight_decay == 0.01 and stage.optimizer.betas == (0.8, 0.999)
    assert stage.schedule.name == "cosine" and stage.schedule.warmup_steps == 2
    assert stage.train_steps == 7 and stage.max_grad_norm is None
    assert (plan.seed, plan.device, plan.progress) == (7, "cpu", False)
    assert len(trainer.distillation_result.losses) == 7


def test_config_values_win_over_training_arguments(tmp_path):
    """Set in the config (optimizer, schedule, accumulation, clipping, seed, train_steps), a
    value beats the arguments."""
    config = {"seed": 5, "max_grad_norm": 0.5, "gradient_accumulation_steps": 2,
              "optimizer": {"SGD": {"learning_rate": 1e-3}}, "schedule": "constant",
              "train": {"train_steps": 3, "criterion": KD_CONFIG["train"]["criterion"]}}
    args = arguments(tmp_path, learning_rate=3e-3, max_steps=7, max_grad_norm=2.0, seed=7,
                     lr_scheduler_type="cosine", gradient_accumulation_steps=1)
    trainer = DistillationTrainer(model=bert(), args=args, train_dataset=ToyTask(n=32))
    trainer.distill(distillation_config=config, teacher_model=bert(seed=4))

    (stage,) = trainer.distiller.plan.stages
    assert (stage.optimizer.name, stage.optimizer.learning_rate) == ("SGD", 1e-3)
    assert stage.train_steps == 3 and stage.max_grad_norm == 0.5
    assert stage.schedule.name == "constant" and stage.gradient_accumulation_steps == 2
    assert trainer.distiller.plan.seed == 5
    assert len(trainer.distillation_result.losses) == 3


def test_epochs_come_from_num_train_epochs_without_max_steps(tmp_path):
    """max_steps <= 0: the stage runs num_train_epochs epochs of the Trainer's loader (32/8 = 4
    batches per epoch, 2 epochs -> 8 steps)."""
    args = arguments(tmp_path, num_train_epochs=2, learning_rate=1e-3)
    trainer = DistillationTrainer(model=bert(), args=args, train_dataset=ToyTask(n=32))
    trainer.distill(distillation_config=KD_CONFIG, teacher_model=bert(seed=4))

    (stage,) = trainer.distiller.plan.stages
    assert stage.train_steps is None and stage.epochs == 2.0
    assert len(trainer.distillation_result.losses) == 8


def test_a_plan_is_used_as_it_is(tmp_path):
    """A DistillationPlan bypasses TrainingArguments: its own steps and learning rate run."""
    plan = DistillationPlan(stages=(Stage(name="regular", kind="regular", train_steps=2,
                                          logit_kd=LogitKD(temperature=2.0),
                                          optimizer=OptimizerSpec(learning_rate=1e-4)),),
                            device="cpu", progress=False)
    trainer = DistillationTrainer(model=bert(), args=arguments(tmp_path, max_steps=9, learning_rate=3e-3),
                                  train_dataset=ToyTask(n=32))
    trainer.distill(distillation_config=plan, teacher_model=bert(seed=4))

    assert trainer.distiller.plan is plan
    assert len(trainer.distillation_result.losses) == 2


def test_intermediate_layers_create_a_matcher_that_save_model_writes(tmp_path):
    """Hidden 16 <- 32 needs a linear matcher; save_model() writes matchers.pt beside the model,
    FeatureMatchers.load() restores equal weights, and the student reloads from the same folder."""
    config = {"regular_distillation": {
        "layer_mappings_for_knowledge_transfer": [["bert.encoder.layer.0.output",
                                                   "bert.encoder.layer.1.output"]],
        "train_steps": 3}}
    student = bert()
    trainer = DistillationTrainer(model=student, args=arguments(tmp_path, learning_rate=1e-3),
                                  train_dataset=ToyTask(n=32))
    trainer.distill(distillation_config=config, teacher_model=bert(hidden=32, layers=2, heads=4))

    matchers = trainer.distiller.matchers
    assert [s.kind for s in matchers.specs.values()] == ["linear"]
    (spec,) = matchers.specs.values()
    assert (spec.student_dim, spec.teacher_dim) == (16, 32)

    out = tmp_path / "saved"
    trainer.save_model(str(out))
    assert (out / FeatureMatchers.FILENAME).is_file() and (out / "config.json").is_file()
    loaded = FeatureMatchers.load(out)
    assert loaded.specs == matchers.specs
    mine = {k: v.cpu() for k, v in matchers.state_dict().items()}
    theirs = loaded.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    reloaded = BertForSequenceClassification.from_pretrained(out)
    assert all(torch.equal(v, reloaded.state_dict()[k]) for k, v in student.state_dict().items())


@pytest.mark.parametrize("as_file", [False, True])
def test_unknown_loss_type_raises_config_error_before_any_step(tmp_path, as_file):
    """An unknown loss type is a ConfigError naming it (and the file), raised before the
    train data is read, so no step runs and the student is unchanged."""
    config: object = {"train": {"criterion": {"KnowledgeDistillationLoss": {
        "loss_types": ["CE", "NoSuchLoss"]}}}}
    if as_file:
        path = tmp_path / "distill.yaml"
        path.write_text("distillation:\n  train:\n    criterion:\n      KnowledgeDistillationLoss:\n"
                        "        loss_types: [CE, NoSuchLoss]\n")
        config = str(path)
    data, student = ToyTask(n=16), bert()
    before = params(student)
    trainer = DistillationTrainer(model=student, args=arguments(tmp_path, max_steps=3), train_dataset=data)

    with pytest.raises(ConfigError, match="NoSuchLoss") as err:
        trainer.distill(distillation_config=config, teacher_model=bert(seed=4))

    if as_file:
        assert str(path) in str(err.value)
    assert data.reads == 0 and trainer.distiller is None
    assert all(torch.equal(before[k], v) for k, v in params(student).items())
