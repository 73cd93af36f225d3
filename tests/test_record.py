"""The trial and study records (study/record.py): every attribute typed, the stored names kept,
figures read through the metric catalogue, one writer."""

from __future__ import annotations

from dataclasses import fields

import optuna
import pytest

from autodistill.objectives import LATENCY, METRICS, PERPLEXITY, builtin_metric, objectives_for
from autodistill.study import record as names
from autodistill.study.record import StudyRecord, TrialRecord, enqueue, write

optuna.logging.set_verbosity(optuna.logging.WARNING)

# as a study written before the record existed holds them (runs/quickstart/study.db)
STORED = {"architecture": {"hidden_size": 64}, "architecture_key": '{"hidden_size": 64}', "worker": "h:1",
          "accuracy": 0.9, "latency_p50_ms": 3.0, "params": 1000, "perplexity": 12.5, "train_seconds": 4.5,
          "student_path": "runs/x/trials/s/00000", "accuracy_curve": {"2": 0.5}, "repeat_of": None}


def test_every_stored_name_is_a_field_of_its_record():
    trial_fields = {f.name for f in fields(TrialRecord)} - {"figures"}
    study_fields = {f.name for f in fields(StudyRecord)}
    constants = {getattr(names, n) for n in names.__all__ if n.isupper()}
    assert constants == trial_fields | study_fields


def test_a_trials_attributes_read_typed_and_write_back_unchanged():
    record = TrialRecord.from_attrs(STORED)
    assert record.architecture == {"hidden_size": 64} and record.worker == "h:1"
    assert record.train_seconds == 4.5 and record.accuracy_curve == {"2": 0.5} and record.repeat_of is None
    assert dict(record.figures) == {"accuracy": 0.9, "latency_p50_ms": 3.0, "params": 1000, "perplexity": 12.5}
    assert record.value(LATENCY) == 3.0 and record.value(PERPLEXITY) == 12.5  # an old study's raw latency
    assert record.to_attrs() == {k: v for k, v in STORED.items() if v is not None}


def test_a_repeat_keeps_the_results_and_none_of_what_a_trial_records_about_itself():
    reused = TrialRecord.from_attrs({**STORED, "retries": 2, "twin_of": 3}).reused(repeat_of=7)
    assert reused.repeat_of == 7 and reused.figures["accuracy"] == 0.9 and reused.student_path
    assert (reused.architecture, reused.architecture_key, reused.worker, reused.retries, reused.twin_of) == (
        None, None, None, None, None)


def test_a_resumed_retry_records_its_resumption_as_fields_under_the_stored_names():
    study = optuna.create_study(directions=["maximize"])
    trial = study.ask()
    write(trial, TrialRecord(resumed_from_trial=0, resumed_at_step=12))
    assert trial.user_attrs == {"resumed_from_trial": 0, "resumed_at_step": 12}  # an older study's names
    record = TrialRecord.from_trial(trial)
    assert (record.resumed_from_trial, record.resumed_at_step) == (0, 12) and not record.figures
    assert (record.reused(repeat_of=0).resumed_from_trial, record.reused(repeat_of=0).resumed_at_step) == (None, None)


def test_the_writer_sets_only_what_the_record_holds_and_json_safe_values():
    study = optuna.create_study(directions=["maximize"])
    trial = study.ask()
    write(trial, TrialRecord(worker="h:2"))
    write(trial, TrialRecord(figures={"accuracy": float("nan"), "shape": (1, 2)}, failure_reason="E: x"))
    assert trial.user_attrs == {"worker": "h:2", "accuracy": None, "shape": [1, 2], "failure_reason": "E: x"}
    enqueue(study, {"x": 1}, TrialRecord(retry_of=0, retries=1))
    queued = study.get_trials(states=(optuna.trial.TrialState.WAITING,))[0]
    assert TrialRecord.from_trial(queued).retry_of == 0 and TrialRecord.from_trial(queued).retries == 1


def test_the_study_record_reads_and_writes_the_studys_own_attributes():
    study = optuna.create_study(directions=["maximize"])
    assert StudyRecord.of(study) == StudyRecord()
    StudyRecord(teacher={"accuracy": 0.97}, search_command="autodistill search x.yaml").write(study)
    StudyRecord(fidelity="full").write(study)  # set on top: nothing else is cleared
    assert StudyRecord.of(study) == StudyRecord(teacher={"accuracy": 0.97}, fidelity="full",
                                                search_command="autodistill search x.yaml")


def test_the_catalogue_knows_perplexity_and_formats_each_metric():
    assert builtin_metric("perplexity") is PERPLEXITY and PERPLEXITY.direction == "minimize"
    (objective,) = objectives_for(["perplexity"], None)  # no higher_is_better needed
    assert objective.direction == "minimize"
    assert [m.format(v) for m, v in ((PERPLEXITY, 12.3456), (builtin_metric("params"), 22_700_000.0),
                                     (LATENCY, None))] == ["12.35", "22,700,000", "-"]
    assert LATENCY.title == "latency p50 (ms)"
    assert len({m.name for m in METRICS}) == len(METRICS)


@pytest.mark.parametrize("attrs", [{}, {"architecture_key": "k"}])
def test_a_record_of_a_trial_with_nothing_or_little_recorded_reads(attrs):
    record = TrialRecord.from_attrs(attrs)
    assert record.figures == {} and record.cost() is None and not record.ruled_out
