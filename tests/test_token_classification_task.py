"""Task token_classification: tags per word from JSON Lines, first sub-word labelling, entity-level
F1, a search through the real CLI, and its bad inputs as one line each."""

from __future__ import annotations

import json
import random
from pathlib import Path

import optuna
import pytest
from conftest import TINY_SEARCH, TINY_SEARCH_END, WORDS, save_tiny_bert, tiny_tokenizer
from transformers import BertForTokenClassification, BertTokenizerFast

from autodistill.cli import main
from autodistill.data.tagged_tokens import TaggedTokens
from autodistill.data.token_files import read_tagged_file
from autodistill.evaluation.entities import entities, entity_f1

TAGS = {"good": "B-POS", "great": "B-POS", "bad": "B-NEG", "awful": "B-NEG"}


@pytest.fixture(scope="module")
def tagged_workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tokens")
    names = sorted({*TAGS.values(), "O"})
    save_tiny_bert(root / "teacher", tokenizer=tiny_tokenizer(root, extra=["##s"]), cls=BertForTokenClassification,
                   labels=len(names), id2label=dict(enumerate(names)))
    rng = random.Random(0)
    for name, n in (("train.jsonl", 48), ("dev.jsonl", 16), ("test.jsonl", 16)):
        lines = []
        for _ in range(n):
            words = rng.choices(WORDS, k=6)
            lines.append(json.dumps({"tokens": words, "tags": [TAGS.get(w, "O") for w in words]}))
        (root / name).write_text("\n".join(lines) + "\n")
    return root


YAML = """\
model: {{name: tiny_tokens}}
teacher: {{model: {root}/teacher, model_cls: AutoModelForTokenClassification}}
data:
  train_file: {root}/{train}
  validation_file: {root}/dev.jsonl
  test_file: {root}/test.jsonl
  text_column: tokens
  label_column: tags
  max_length: 12
  batch_size: 8
""" + TINY_SEARCH + """\
  regular_distillation: {{train_steps: 4, temperature: 2.0}}
""" + TINY_SEARCH_END


def write_config(root: Path, out: Path, *, train: str = "train.jsonl") -> Path:
    path = out.parent / f"{out.name}.yaml"
    path.write_text(YAML.format(root=root, out=out, train=train))
    return path


def test_entities_are_counted_whole_by_start_end_and_type():
    assert entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"]) == {(0, 2, "PER"), (3, 4, "LOC"), (4, 5, "LOC")}
    gold, predicted = ["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "O", "B-LOC"]  # PER cut short
    assert entity_f1([(gold, predicted)]) == {"f1": 0.5, "precision": 0.5, "recall": 0.5}
    assert entity_f1([(["O"], ["O"])])["f1"] == 0.0


def test_each_words_tag_is_on_its_first_sub_word(tagged_workspace, tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"tokens": ["goods", "film"], "tags": ["B-POS", "O"]}) + "\n")
    data = read_tagged_file(path, text_column="tokens", label_column="tags", label_names=["B-NEG", "B-POS", "O"])
    tokenizer = BertTokenizerFast.from_pretrained(str(tagged_workspace / "teacher"))
    dataset = TaggedTokens(data, tokenizer, max_length=8)
    tokens = tokenizer.convert_ids_to_tokens(dataset.tensors["input_ids"][0].tolist())
    assert tokens[:5] == ["[CLS]", "good", "##s", "film", "[SEP]"]
    assert dataset.tensors["labels"][0].tolist() == [-100, 1, -100, 2, -100, -100, -100, -100]


def test_a_token_classification_search_ends_with_a_pareto_table_of_entity_f1(tagged_workspace, tmp_path,
                                                                             capsys):
    out = tmp_path / "run"
    assert main(["search", str(write_config(tagged_workspace, out))]) == 0
    assert "teacher" in capsys.readouterr().out
    study = optuna.load_study(study_name="tiny_tokens", storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for trial in done:
        attrs = trial.user_attrs
        assert attrs["accuracy"] == attrs["f1"] and 0 <= attrs["token_accuracy"] <= 1 and "test_f1" in attrs
    student = BertForTokenClassification.from_pretrained(Path(done[0].user_attrs["student_path"]))
    assert student.config.id2label == {0: "B-NEG", 1: "B-POS", 2: "O"}


@pytest.mark.parametrize("line, words", [
    ({"tokens": ["good", "film"]}, ["no column 'tags'"]),
    ({"tokens": ["good", "film"], "tags": ["B-POS"]}, ["2 words but 1 tags", "data.label_column"]),
    ({"tokens": "good film", "tags": ["B-POS", "O"]}, ["data.text_column", "list of strings"]),
])
def test_token_labels_missing_or_misfit_are_one_line(tagged_workspace, tmp_path, capsys, line, words):
    (tmp_path / "bad.jsonl").write_text(json.dumps(line) + "\n")
    out = tmp_path / "run"
    config = write_config(tagged_workspace, out).read_text().replace(f"{tagged_workspace}/train.jsonl",
                                                                    str(tmp_path / "bad.jsonl"))
    (tmp_path / "run.yaml").write_text(config)
    assert main(["search", str(tmp_path / "run.yaml"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("autodistill: error:") and "line 1" in err[0]
    assert all(word in err[0] for word in words), err[0]
