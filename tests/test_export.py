"""Exporting the chosen student: rules (`--best`), the folder with its tokenizer and model
card, ONNX checked against PyTorch; on hand-made studies and after a real tiny search."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
from conftest import tiny_bert
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from autodistill.cli import main
from autodistill.data import TokenizedDataset, make_loader, read_text_file
from autodistill.errors import ConfigError
from autodistill.evaluation import accuracy
from autodistill.export import export_student
from autodistill.study.record import REPEAT_OF, TEACHER, TEACHER_MODEL
from autodistill.study.selection import SelectionRule, select_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)

HIDDEN = CategoricalDistribution((16, 32, 64, 128))
TEACHER_FIGURES = {"accuracy": 0.90, "latency_p50_ms": 20.0}
# number: (accuracy, latency ms, params); retention = accuracy / 0.90
STUDENTS = {0: (0.89, 4.0, 300), 1: (0.88, 2.0, 200), 2: (0.86, 1.0, 100), 3: (0.89, 4.0, 250),
            4: (0.80, 0.5, 50), 5: (0.86, 1.0, 100)}


def _study(teacher=TEACHER_FIGURES) -> optuna.Study:
    study = optuna.create_study(study_name="rules", directions=["maximize", "minimize"])
    if teacher is not None:
        study.set_user_attr(TEACHER, teacher)
    for acc, lat, params in STUDENTS.values():
        study.add_trial(create_trial(values=[acc, lat], params={"h": 16}, distributions={"h": HIDDEN},
                                     user_attrs={"accuracy": acc, "latency_p50_ms": lat, "params": params}))
    # a repeat of the fastest, which never stands for itself; a failed trial
    study.add_trial(create_trial(values=[0.80, 0.5], params={"h": 16}, distributions={"h": HIDDEN},
                                 user_attrs={"accuracy": 0.80, "latency_p50_ms": 0.5, "params": 50,
                                             REPEAT_OF: 4}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"h": 16}, distributions={"h": HIDDEN}))
    return study


@pytest.mark.parametrize("rule, number", [
    (SelectionRule("fastest"), 4),
    (SelectionRule("fastest", min_retention=0.97), 1),         # 0.88 / 0.90 = 97.8%
    (SelectionRule("fastest", min_retention=0.98), 3),         # ties with 0 but fewer parameters
    (SelectionRule("most-accurate"), 3),                       # the same tie, the same answer
    (SelectionRule("most-accurate", max_latency_ms=2.5), 1),
    (SelectionRule("most-accurate", max_latency_ms=1.0), 2),   # the bound is inclusive
    (SelectionRule("smallest", min_accuracy=0.85), 2),         # 5 equals 2: the lower number
    (SelectionRule("smallest"), 4),
])
def test_a_rule_picks_the_trial_it_describes(rule, number):
    assert select_trial(_study(), rule).number == number


def test_rules_describe_themselves():
    assert SelectionRule("fastest", min_retention=0.97).describe() == "fastest with retention >= 97%"
    assert (SelectionRule("most-accurate", max_latency_ms=5, min_accuracy=0.9).describe()
            == "most-accurate with accuracy >= 0.9 and latency <= 5 ms")


def test_no_qualifying_trial_says_what_the_study_offers():
    with pytest.raises(ConfigError) as err:
        select_trial(_study(), SelectionRule("fastest", min_retention=0.995, max_latency_ms=0.1))
    message = str(err.value)
    assert "meets retention >= 99.5% and latency <= 0.1 ms" in message
    assert "the highest retention is 98.9% (trial 0)" in message
    assert "the lowest latency is 0.5 ms (trial 4)" in message


@pytest.mark.parametrize("kwargs, words", [
    ({"goal": "fast"}, "choose one of: fastest, most-accurate, smallest"),
    ({"goal": "fastest", "min_retention": 97}, "write e.g. 0.97"),
    ({"goal": "fastest", "min_accuracy": 1.5}, "in [0, 1]"),
    ({"goal": "fastest", "max_latency_ms": 0}, "must be positive"),
])
def test_bad_rules_name_the_fix(kwargs, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        SelectionRule(**kwargs)


def test_retention_needs_the_teachers_accuracy():
    with pytest.raises(ConfigError, match="use --min-accuracy instead"):
        select_trial(_study(teacher=None), SelectionRule("fastest", min_retention=0.9))


def test_a_study_without_completed_trials_says_so():
    empty = optuna.create_study(study_name="none", directions=["maximize", "minimize"])
    with pytest.raises(ConfigError, match="has no completed trial yet"):
        select_trial(empty, SelectionRule("fastest"))


def test_a_student_saved_without_a_tokenizer_gets_the_teachers(workspace, tmp_path):
    """A user's own save_func may save only the model: the export adds the teacher's tokenizer."""
    saved = tmp_path / "trials" / "00000"
    tiny_bert(hidden=16, layers=1, heads=2).save_pretrained(saved)
    study = optuna.create_study(study_name="own", directions=["maximize", "minimize"])
    study.set_user_attr(TEACHER_MODEL, str(workspace / "teacher"))
    study.add_trial(create_trial(values=[0.5, 1.0], user_attrs={"student_path": str(saved),
                                                                "accuracy": 0.5, "latency_p50_ms": 1.0}))
    assert not (saved / "tokenizer_config.json").exists()
    exported = export_student(study, study.trials[0], tmp_path / "out", selected_by="--trial 0")
    assert exported.tokenizer_from == str(workspace / "teacher")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(workspace / "teacher").get_vocab()
    assert (tmp_path / "out" / "README.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "trials"]  # no temporary folder left


# -- after a real tiny search, through the command line ------------------------------------

@pytest.fixture
def searched(finished_search):
    out, config = finished_search
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}"), config


def _dev_loader(workspace, tokenizer):
    train = read_text_file(workspace / "train.csv")
    dev = read_text_file(workspace / "dev.csv", label_names=list(train.label_names))
    return make_loader(TokenizedDataset(dev, tokenizer, max_length=12), batch_size=64, shuffle=False)


def _fastest(study: optuna.Study):
    done = [t for t in study.trials if t.state == TrialState.COMPLETE and REPEAT_OF not in t.user_attrs]
    # the latency objective: the student's time at the study's reference teacher latency
    return min(done, key=lambda t: (t.user_attrs["latency_ms"], -t.user_attrs["accuracy"], t.number))


def test_export_best_reloads_with_the_recorded_accuracy_and_a_model_card(searched, workspace, tmp_path, capsys):
    study, config = searched
    expected = _fastest(study)
    target = tmp_path / "student"
    capsys.readouterr()
    assert main(["export", str(config), "--best", "fastest", "--out", str(target)]) == 0
    assert f"trial {expected.number} (the rule 'fastest') exported to {target}" in capsys.readouterr().out
    model = AutoModelForSequenceClassification.from_pretrained(target)
    tokenizer = AutoTokenizer.from_pretrained(target)
    assert accuracy(model, _dev_loader(workspace, tokenizer)) == pytest.approx(expected.user_attrs["accuracy"])
    card = (target / "README.md").read_text()
    attrs, teacher = expected.user_attrs, study.user_attrs[TEACHER]
    for key, value in attrs["architecture"].items():
        assert f"| {key} | {value} |" in card
    assert f"| validation accuracy | {attrs['accuracy']:.4g} | {teacher['accuracy']:.4g} |" in card
    assert f"| test accuracy | {attrs['test_accuracy']:.4g} | {teacher['test_accuracy']:.4g} |" in card
    assert f"| latency p50 (ms) | {attrs['latency_ms']:.4g} | {teacher['latency_ms']:.4g} |" in card
    assert f"| latency p90 (ms) | {attrs['latency_p90_ms']:.4g} |" in card
    assert f"| parameters | {attrs['params']:,} | {teacher['params']:,} |" in card
    speedup = attrs.get("speedup") or teacher["latency_p50_ms"] / attrs["latency_p50_ms"]
    assert f"| speed-up vs the teacher | {speedup:.2f}x | 1.00x |" in card
    assert f"| retention (validation accuracy) | {100 * attrs['accuracy'] / teacher['accuracy']:.1f}% |" in card
    assert f"`{workspace / 'teacher'}`" in card and f"`{workspace / 'dev.csv'}`" in card
    assert f"- search (its last run): `autodistill search {config} --quiet`" in card
    assert f"- export: `autodistill export {config} --best fastest --out {target}`" in card
    assert "Model class: `BertForSequenceClassification`" in card


def test_export_refuses_a_non_empty_folder_and_conditions_without_best(searched, tmp_path, capsys):
    _, config = searched
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    assert main(["export", str(config), "--best", "smallest", "--out", str(tmp_path / "taken")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "taken" / "x").read_text() == "mine"
    assert main(["export", str(config), "--trial", "1", "--min-retention", "0.9", "--out", str(tmp_path / "y")]) == 2
    assert "--min-retention choose among trials with --best" in capsys.readouterr().err
    assert main(["export", str(config), "--best", "quickest", "--out", str(tmp_path / "y")]) == 2
    assert "choose one of: fastest, most-accurate, smallest" in capsys.readouterr().err
    assert main(["export", str(config), "--best", "fastest", "--min-retention", "1.99",
                 "--out", str(tmp_path / "y")]) == 2
    assert "no completed trial of study 'tiny' meets retention >= 199%" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_onnx_export_matches_pytorch_on_real_text(searched, workspace, tmp_path):
    pytest.importorskip("onnxruntime", reason="ONNX export needs the onnx extra: pip install 'autodistill-nas[onnx]'")
    import onnxruntime

    _, config = searched
    target = tmp_path / "onnx"
    assert main(["export", str(config), "--best", "most-accurate", "--onnx", "--out", str(target)]) == 0
    assert "## ONNX" in (target / "README.md").read_text()
    model = AutoModelForSequenceClassification.from_pretrained(target).eval()
    batch = next(iter(_dev_loader(workspace, AutoTokenizer.from_pretrained(target))))
    session = onnxruntime.InferenceSession(str(target / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {k: batch[k].numpy() for k in ("input_ids", "attention_mask")})
    with torch.inference_mode():
        expected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert logits.shape == tuple(expected.shape) and np.allclose(logits, expected.numpy(), atol=1e-4)


def test_onnx_without_its_packages_names_the_extra(searched, tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a))
    _, config = searched
    assert main(["export", str(config), "--best", "fastest", "--onnx", "--out", str(tmp_path / "o")]) == 2
    assert "--onnx needs onnxruntime: pip install 'autodistill-nas[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

