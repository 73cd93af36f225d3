"""Task regression: numeric targets from CSV / JSON Lines, MSE and Pearson, MSE logit KD, a search
through the real CLI, and its bad inputs as one line each."""

from __future__ import annotations

import json
import random
from pathlib import Path

import optuna
import pytest
import torch
from conftest import TINY_SEARCH, TINY_SEARCH_END, WORDS, save_tiny_bert, tiny_tokenizer
from transformers import BertForSequenceClassification

from autodistill.cli import main
from autodistill.data import read_text_file
from autodistill.evaluation.regression import regression_figures


@pytest.fixture(scope="module")
def regression_workspace(tmp_path_factory) -> Path:
    """A tiny one-output BERT teacher and texts scored by how many positive words they hold."""
    root = tmp_path_factory.mktemp("regression")
    save_tiny_bert(root / "teacher", tokenizer=tiny_tokenizer(root), labels=1, problem_type="regression")
    rng = random.Random(0)
    for name, n in (("train.csv", 48), ("dev.jsonl", 16), ("test.jsonl", 16)):
        rows = []
        for _ in range(n):
            words = rng.choices(WORDS, k=6)
            rows.append((" ".join(words), float(sum(w in WORDS[:3] for w in words))))
        if name.endswith(".csv"):
            (root / name).write_text("text,score\n" + "".join(f"{t},{s}\n" for t, s in rows))
        else:
            (root / name).write_text("".join(json.dumps({"text": t, "score": s}) + "\n" for t, s in rows))
    return root


YAML = """\
model: {{name: tiny_regression}}
task: regression
teacher: {{model: {root}/teacher}}
data:
  train_file: {root}/{train}
  validation_file: {root}/dev.jsonl
  test_file: {root}/test.jsonl
  label_column: score
  max_length: 12
  batch_size: 8
""" + TINY_SEARCH + """\
  regular_distillation:
    train_steps: 4
    loss_types: [{losses}]
""" + TINY_SEARCH_END


def write_config(root: Path, out: Path, *, losses: str = "MSE, MSE", train: str = "train.csv") -> Path:
    path = out.parent / f"{out.name}.yaml"
    path.write_text(YAML.format(root=root, out=out, losses=losses, train=train))
    return path


def test_numeric_targets_are_read_from_csv_and_json_lines(regression_workspace):
    csv_rows = read_text_file(regression_workspace / "train.csv", label_column="score", targets=True)
    jsonl_rows = read_text_file(regression_workspace / "dev.jsonl", label_column="score", targets=True)
    assert csv_rows.targets is not None and len(csv_rows.targets) == 48
    assert jsonl_rows.subset([0, 1]).targets == jsonl_rows.targets[:2]
    assert all(isinstance(t, float) for t in jsonl_rows.targets)


def test_regression_figures_are_mse_and_pearson():
    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask=None):
            return {"logits": torch.tensor([[1.0], [2.0], [4.0]])}

    batch = {"input_ids": torch.zeros(3, 2, dtype=torch.long), "labels": torch.tensor([1.0, 3.0, 5.0])}
    figures = regression_figures(Fixed(), [batch])
    assert figures["mse"] == pytest.approx((0 + 1 + 1) / 3)
    assert figures["pearson"] == pytest.approx(float(torch.corrcoef(torch.tensor(
        [[1.0, 2.0, 4.0], [1.0, 3.0, 5.0]]))[0, 1]))


def test_a_regression_search_ends_with_a_pareto_table_of_pearson_and_latency(regression_workspace, tmp_path,
                                                                             capsys):
    out = tmp_path / "run"
    assert main(["search", str(write_config(regression_workspace, out))]) == 0
    assert "teacher" in capsys.readouterr().out
    study = optuna.load_study(study_name="tiny_regression", storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for trial in done:
        attrs = trial.user_attrs
        assert attrs["accuracy"] == attrs["pearson"] and attrs["mse"] >= 0 and attrs["test_mse"] >= 0
    student = BertForSequenceClassification.from_pretrained(Path(done[0].user_attrs["student_path"]))
    assert student.config.num_labels == 1 and student.config.problem_type == "regression"


@pytest.mark.parametrize("losses, train, words", [
    ("KL, CE", "train.csv", ["auto_distillation.regular_distillation.loss_types", "regression", "MSE"]),
    ("MSE, MSE", "bad.csv", ["line 3", "column 'score'", "data.label_column", "'high'"]),
])
def test_regression_bad_inputs_are_one_line(regression_workspace, tmp_path, capsys, losses, train, words):
    (regression_workspace / "bad.csv").write_text("text,score\ngood film,1\nbad film,high\n")
    out = tmp_path / "run"
    assert main(["search", str(write_config(regression_workspace, out, losses=losses, train=train)),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("autodistill: error:")
    assert all(word in err[0] for word in words), err[0]
