"""Several validation sets (`data.validation_files: {name: file}`): each evaluated during
training and logged for `distill` and for each search trial; the search chooses on the first and
records all; a set holding a label training lacks is refused before training, naming its key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest
from test_cli_distill import _config as distill_config
from test_tb_logging import events

from autodistill.cli import main
from autodistill.config.schema import DataSection
from autodistill.data.sources import load_splits
from autodistill.errors import ConfigError


def _second_set(workspace: Path, tmp_path: Path, *, extra_label: str | None = None) -> Path:
    """dev.csv's rows reversed (another set of the same classes), or with one row of `extra_label`."""
    lines = (workspace / "dev.csv").read_text().splitlines()
    rows = lines[1:][::-1]
    if extra_label is not None:
        rows[0] = rows[0].rsplit(",", 1)[0] + f",{extra_label}"
    path = tmp_path / ("odd.csv" if extra_label else "hard.csv")
    path.write_text("\n".join([lines[0], *rows]) + "\n")
    return path


def test_validation_file_comes_first_then_the_named_sets(workspace, tmp_path):
    hard = _second_set(workspace, tmp_path)
    section = DataSection(train_file=str(workspace / "train.csv"), validation_file=str(workspace / "dev.csv"),
                          validation_files={"hard": str(hard)})
    splits = load_splits(section)
    assert list(splits.validations) == ["validation", "hard"]
    assert splits.validation is splits.validations["validation"]
    assert splits.validations["hard"].label_names == splits.train.label_names
    assert sorted(splits.validations["hard"].labels) == sorted(splits.validation.labels)


def test_validation_files_alone_choose_on_their_first_set(workspace, tmp_path):
    hard = _second_set(workspace, tmp_path)
    splits = load_splits(DataSection(train_file=str(workspace / "train.csv"),
                                     validation_files={"hard": str(hard), "dev": str(workspace / "dev.csv")}))
    assert list(splits.validations) == ["hard", "dev"] and splits.validation is splits.validations["hard"]


def test_a_label_training_lacks_is_refused_naming_the_key_and_file(workspace, tmp_path):
    odd = _second_set(workspace, tmp_path, extra_label="neutral")
    section = DataSection(train_file=str(workspace / "train.csv"), validation_file=str(workspace / "dev.csv"),
                          validation_files={"odd": str(odd)})
    with pytest.raises(ConfigError) as caught:
        load_splits(section)
    message = str(caught.value)
    assert message.startswith(f"data.validation_files.odd: {odd}: label 'neutral' is not one of training's")
    assert "['neg', 'pos']" in message and "fix or remove" in message and "\n" not in message


@pytest.mark.parametrize("files, rule", [({"test": "x.csv"}, "'test'"), ({"validation": "x.csv"}, "'validation'"),
                                         ({}, "empty")])
def test_set_names_that_clash_are_refused(workspace, files, rule):
    with pytest.raises(ValueError, match=rule):
        DataSection(train_file="t.csv", validation_file="d.csv", validation_files=files)


def test_distill_refuses_the_set_before_training_with_one_line(workspace, tmp_path, capsys):
    odd = _second_set(workspace, tmp_path, extra_label="neutral")
    out = tmp_path / "student"
    config = distill_config(workspace, out)
    config.write_text(config.read_text().replace(
        "  validation_file:", f"  validation_files: {{odd: {odd}}}\n  validation_file:"))
    assert main(["distill", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("autodistill: error: data.validation_files.odd: ")
    assert not (out / "checkpoints").exists() and not (out / "distillation.json").exists()


def test_distill_evaluates_every_set_during_training_and_logs_it(workspace, tmp_path, caplog):
    hard = _second_set(workspace, tmp_path)
    out = tmp_path / "student"
    config = distill_config(workspace, out, extra="")
    config.write_text(config.read_text().replace(
        "  validation_file:", f"  validation_files: {{hard: {hard}}}\n  validation_file:").replace(
        "  progress: false\n", "  progress: false\n  eval_every_steps: 3\n"))
    with caplog.at_level("INFO", logger="autodistill.distill"):
        assert main(["distill", str(config), "--quiet"]) == 0
    summary = json.loads((out / "distillation.json").read_text())
    mid = [e for e in summary["evaluations"] if e["global_step"] == 3]
    assert mid and set(mid[0]["metrics"]) == {"validation", "hard"}
    assert any("validation: accuracy" in r.getMessage() and "hard: accuracy" in r.getMessage()
               for r in caplog.records)


def test_a_search_trial_records_every_set_and_chooses_on_the_first(workspace, tmp_path):
    from test_search import write_config

    hard = _second_set(workspace, tmp_path)
    out = tmp_path / "run"
    config = write_config(workspace, out, **{
        "  validation_file:": f"  validation_files: {{hard: {hard}}}\n  validation_file:",
        "    max_trials: 4\n": "    max_trials: 1\n",
        "  progress: false\n": "  progress: false\n  eval_every_steps: 2\n  logging: {tensorboard: true}\n"})
    assert main(["search", str(config), "--quiet"]) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    trial = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert {"accuracy", "hard_accuracy", "test_accuracy"} <= trial.user_attrs.keys()
    assert trial.values[0] == trial.user_attrs["accuracy"]  # the first set is the objective
    assert not (out / "checkpoints" / "tiny" / f"{trial.number:05d}").exists()  # removed once trained
    logged = events(out / "tensorboard" / "tiny" / f"{trial.number:05d}")
    assert [step for step, _ in logged["eval/hard/accuracy"]][:2] == [2, 4]
    assert logged["eval/validation/accuracy"]
    shutil.rmtree(out)


def test_a_set_of_class_ids_takes_them_as_trainings_ids():
    from autodistill.data.examples import LabelledTexts
    from autodistill.data.validation_sets import with_training_classes

    train = LabelledTexts(texts=("a", "b"), labels=(0, 1), label_names=("neg", "pos"))
    ids = LabelledTexts(texts=("c", "d", "e"), labels=(1, 0, 1), label_names=("0", "1"))
    names = LabelledTexts(texts=("c", "d"), labels=(0, 0), label_names=("pos",))
    assert with_training_classes(ids, train, key="k", path="p", train_file="t").labels == (1, 0, 1)
    mapped = with_training_classes(names, train, key="k", path="p", train_file="t")
    assert mapped.labels == (1, 1) and mapped.label_names == ("neg", "pos")
    too_many = LabelledTexts(texts=("c",), labels=(2,), label_names=("0", "1", "2"))
    with pytest.raises(ConfigError, match="label '2' is not one of training's labels"):
        with_training_classes(too_many, train, key="k", path="p", train_file="t")
