"""The teacher-output cache: hits and misses, stale and partial caches, and losses equal to
the live teacher's within float16 tolerance."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import tiny_bert
from transformers import AutoTokenizer

from autodistill import Distiller
from autodistill.data import TokenizedDataset, make_loader, read_text_file
from autodistill.distill.teacher_cache import LOGITS, TeacherCache, features_for

FEATURES = [("bert.encoder.layer.1.output", ()), ("bert.encoder.layer.0.attention.self", (1,)), LOGITS]


def test_miss_then_hit_reads_the_same_values(cache_teacher, train_set, tmp_path):
    first = TeacherCache(cache_teacher, train_set, root=tmp_path)
    first.ensure(FEATURES)
    assert first.built == FEATURES
    again = TeacherCache(cache_teacher, train_set, root=tmp_path)
    again.ensure(FEATURES)
    assert again.built == []  # a hit: nothing recomputed
    idx = torch.tensor([5, 0, 63])
    a, b = first.lookup(idx, FEATURES, torch.device("cpu")), again.lookup(idx, FEATURES, torch.device("cpu"))
    for f in FEATURES:
        assert torch.equal(a.get(*f) if f != LOGITS else a.output["logits"],
                           b.get(*f) if f != LOGITS else b.output["logits"])


def test_cached_rows_equal_the_live_teacher_within_fp16(cache_teacher, train_set, tmp_path):
    cache = TeacherCache(cache_teacher, train_set, root=tmp_path)
    cache.ensure(FEATURES)
    idx = torch.tensor([3, 17, 40])
    rows = cache.lookup(idx, FEATURES, torch.device("cpu"))
    batch = {k: v[idx] for k, v in train_set.tensors.items() if k != "labels"}
    with torch.no_grad():
        out = cache_teacher(**batch, output_hidden_states=True, output_attentions=True)
    assert torch.allclose(rows.output["logits"], out.logits, atol=1e-6)
    assert torch.allclose(rows.get("bert.encoder.layer.1.output"), out.hidden_states[2], rtol=1e-2, atol=1e-2)
    assert torch.allclose(rows.get("bert.encoder.layer.0.attention.self", (1,)), out.attentions[0], atol=1e-3)


def test_a_changed_teacher_or_dataset_never_reads_a_stale_cache(cache_teacher, train_set, tmp_path, workspace):
    base = TeacherCache(cache_teacher, train_set, root=tmp_path)
    base.ensure(FEATURES)
    changed = copy.deepcopy(cache_teacher)
    with torch.no_grad():
        changed.classifier.bias.add_(1.0)
    other_teacher = TeacherCache(changed, train_set, root=tmp_path)
    other_teacher.ensure(FEATURES)
    assert other_teacher.directory != base.directory and other_teacher.built == FEATURES
    tokenizer = AutoTokenizer.from_pretrained(workspace / "teacher")
    other_data = TokenizedDataset(read_text_file(workspace / "dev.csv"), tokenizer, max_length=12)
    third = TeacherCache(cache_teacher, other_data, root=tmp_path)
    third.ensure(FEATURES)
    assert third.directory not in (base.directory, other_teacher.directory) and third.built == FEATURES


def test_a_partial_cache_is_detected_and_rebuilt(cache_teacher, train_set, tmp_path):
    cache = TeacherCache(cache_teacher, train_set, root=tmp_path)
    cache.ensure(FEATURES)
    stem = cache._stem(FEATURES[0])
    stem.with_suffix(".json").unlink()  # as if killed between the data and its marker
    rebuilt = TeacherCache(cache_teacher, train_set, root=tmp_path)
    rebuilt.ensure(FEATURES)
    assert rebuilt.built == [FEATURES[0]]


def test_distillation_with_the_cache_gives_the_live_losses(cache_teacher, train_set, tmp_path):
    config = {"seed": 3, "progress": False, "optimizer": {"learning_rate": 1e-3},
              "flash_distillation": {
                  "block_names": ["bert.encoder.layer.0"],
                  "layer_mappings_for_knowledge_transfer": [[
                      ["bert.encoder.layer.0.attention.self", "1", "bert.encoder.layer.0.attention.self", "1"],
                      ["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]]],
                  "loss_types": [["KL", "MSE"]], "train_steps": [4]},
              "regular_distillation": {"train_steps": 6, "loss_types": ["KL", "CE"], "temperature": 2.0}}
    losses, teacher_calls = [], []
    calls = []
    cache_teacher.register_forward_hook(lambda *a: calls.append(1))
    for use_cache in (False, True):
        student = tiny_bert(hidden=16, layers=1, heads=2, seed=1)
        cache = TeacherCache(cache_teacher, train_set, root=tmp_path) if use_cache else None
        if cache is not None:
            cache.ensure(features_for(Distiller(cache_teacher, student, config).plan.stages))
        loader = make_loader(train_set, batch_size=16, shuffle=True, seed=0)
        calls.clear()
        losses.append(Distiller(cache_teacher, student, config, teacher_cache=cache).fit(loader).losses)
        teacher_calls.append(len(calls))
    assert losses[0] == pytest.approx(losses[1], rel=2e-3, abs=2e-3)
    assert teacher_calls == [1 + 6, 1]  # live: the probe and every regular step (flash is cut
    # short before the model's output hook); cached: the probe only


def test_features_for_a_plan_lists_mapped_features_and_logits():
    from autodistill import load_distillation_plan

    plan = load_distillation_plan({
        "flash_distillation": {"block_names": ["a"],
                               "layer_mappings_for_knowledge_transfer": [[["a.x", "1", "t.y", "1"]]],
                               "train_steps": [1]},
        "regular_distillation": {"train_steps": 1}})
    assert features_for(plan.stages) == [("t.y", (1,)), LOGITS]
