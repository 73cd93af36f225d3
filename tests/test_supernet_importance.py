"""Importance ordering: the reordered teacher computes the same function, most important first."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_bert, toy_batches

from autodistill.errors import ConfigError
from autodistill.models.init_from_teacher import init_from_teacher
from autodistill.supernet import reorder_by_importance


def _logits(model, batch):
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def test_reordering_preserves_the_teachers_logits():
    teacher = tiny_bert(hidden=32, layers=3, heads=4, seed=5).eval()
    probe = toy_batches(1, batch_size=16, seed=9)[0]
    before = _logits(teacher, probe)
    report = reorder_by_importance(teacher, toy_batches(4, seed=2))
    torch.testing.assert_close(_logits(teacher, probe), before, atol=1e-5, rtol=0)
    assert report.batches == 4
    assert len(report.head_order) == 3 and all(sorted(o) == [0, 1, 2, 3] for o in report.head_order)
    assert all(sorted(o) == list(range(64)) for o in report.neuron_order)
    assert any(list(o) != list(range(64)) for o in report.neuron_order)  # something moved


def test_reordering_preserves_a_distilberts_logits():
    from test_supernet_elastic import tiny_distilbert

    teacher = tiny_distilbert()
    probe = toy_batches(1, batch_size=16, seed=9)[0]
    before = _logits(teacher, probe)
    report = reorder_by_importance(teacher, toy_batches(2, seed=2))
    torch.testing.assert_close(_logits(teacher, probe), before, atol=1e-5, rtol=0)
    assert any(list(o) != list(range(4)) for o in report.head_order)


def test_heads_and_neurons_end_most_important_first():
    teacher = tiny_bert(hidden=32, layers=2, heads=4, seed=5).eval()
    batches = toy_batches(4, seed=2)
    first = reorder_by_importance(teacher, batches)
    for scores, order in zip(first.head_importance, first.head_order):
        ranked = [scores[i] for i in order]
        assert ranked == sorted(ranked, reverse=True)
    again = reorder_by_importance(teacher, batches)  # measured on the reordered model: already sorted
    for scores in again.neuron_importance:
        assert list(scores) == pytest.approx(sorted(scores, reverse=True), rel=1e-4, abs=1e-9)


def test_init_from_teacher_then_copies_the_most_important_head():
    teacher = tiny_bert(hidden=32, layers=2, heads=4, seed=5).eval()
    original = {n: p.detach().clone() for n, p in teacher.named_parameters()}
    report = reorder_by_importance(teacher, toy_batches(4, seed=2))
    student = tiny_bert(hidden=8, layers=2, heads=1, seed=1)  # one head of the teacher's size 8
    init_from_teacher(student, teacher)
    best = report.head_order[0][0]
    query = original["bert.encoder.layer.0.attention.self.query.weight"]
    torch.testing.assert_close(student.bert.encoder.layer[0].attention.self.query.weight,
                               query[best * 8:(best + 1) * 8, :8])


def test_batches_without_labels_are_a_config_error():
    teacher = tiny_bert(hidden=16, layers=1, heads=2)
    batch = {k: v for k, v in toy_batches(1)[0].items() if k != "labels"}
    with pytest.raises(ConfigError, match="labels"):
        reorder_by_importance(teacher, [batch])


def test_student_importance_order_initialises_students_from_an_ordered_copy(workspace, tmp_path):
    from test_search import write_config

    from autodistill.study.run import load_search_config
    from autodistill.study.task import DistillationTask

    extra = "student: {init_from_teacher: true, importance_order: true}"
    task = DistillationTask(load_search_config(write_config(workspace, tmp_path / "run", extra)), quiet=True)
    assert task.init_teacher is not task.teacher
    batch = task.importance_batches(1)[0]
    torch.testing.assert_close(_logits(task.init_teacher, batch), _logits(task.teacher, batch), atol=1e-5, rtol=0)
    student = task.build({"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1})
    copied = student.bert.encoder.layer[0].attention.self.query.weight
    source = task.init_teacher.bert.encoder.layer[1].attention.self.query.weight  # 1 of 2 layers: the last
    torch.testing.assert_close(copied, source[:8, :8])
    assert not torch.equal(source, task.teacher.bert.encoder.layer[1].attention.self.query.weight)


def test_importance_order_without_init_from_teacher_is_a_config_error():
    from autodistill.config.schema import StudentBuilderSection

    with pytest.raises(ValueError, match="set student.init_from_teacher: true"):
        StudentBuilderSection(importance_order=True)
