"""The teacher cache at the run's precision: bf16/fp16 runs store 16-bit features and logits
(float32 logits where the loss compares their values; float32 for a feature that overflows
float16), each precision its own files; reads are float32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_bert
from test_teacher_cache import FEATURES

from autodistill import Distiller
from autodistill.config.plan import DistillationPlan, LogitKD, Stage
from autodistill.data import make_loader
from autodistill.distill.teacher_cache import LOGITS, TeacherCache, cache_dtypes
from autodistill.errors import ConfigError
from autodistill.precision import cpu_has_bf16

CPU = torch.device("cpu")


def _stage(loss: str) -> Stage:
    return Stage(name="regular", kind="regular", logit_kd=LogitKD(loss_types=(loss, "CE")))


@pytest.mark.parametrize("precision, loss, expected", [
    ("fp32", "KL", ("float16", "float32")), ("bf16", "KL", ("bfloat16", "bfloat16")),
    ("fp16", "CE", ("float16", "float16")), ("bf16", "MSE", ("bfloat16", "float32")),
    ("fp16", "MSE", ("float16", "float32"))])
def test_the_stored_dtypes_follow_the_precision_and_the_loss(precision, loss, expected):
    assert cache_dtypes(precision, [_stage(loss)]) == expected


def _live(cache_teacher, train_set, idx):
    batch = {k: v[idx] for k, v in train_set.tensors.items() if k != "labels"}
    with torch.no_grad():
        return cache_teacher(**batch, output_hidden_states=True)


def test_a_bf16_cache_holds_bf16_values_read_as_float32(cache_teacher, train_set, tmp_path):
    cache = TeacherCache(cache_teacher, train_set, root=tmp_path)
    cache.ensure(FEATURES, dtypes=("bfloat16", "bfloat16"))
    idx = torch.tensor([3, 17, 40])
    rows = cache.lookup(idx, FEATURES, CPU)
    out = _live(cache_teacher, train_set, idx)
    logits = rows.output["logits"]
    assert logits.dtype == torch.float32
    assert torch.equal(logits, out.logits.to(torch.bfloat16).float())
    assert torch.equal(rows.get("bert.encoder.layer.1.output"), out.hidden_states[2].to(torch.bfloat16).float())
    on_disk = [np.load(p, mmap_mode="r").dtype for p in cache.directory.glob("*.npy")]
    assert on_disk == [np.dtype(np.uint16)] * len(FEATURES)  # 2 bytes a value: half the fp32 logits' size


def test_each_precision_has_files_of_its_own_and_fp32_keeps_the_old_names(cache_teacher, train_set, tmp_path):
    fp32 = TeacherCache(cache_teacher, train_set, root=tmp_path)
    fp32.ensure(FEATURES)
    names = {p.name for p in fp32.directory.glob("*.npy")}
    bf16 = TeacherCache(cache_teacher, train_set, root=tmp_path)
    bf16.ensure(FEATURES, dtypes=("bfloat16", "bfloat16"))
    assert bf16.built == FEATURES  # not read from the fp32 files
    assert names < {p.name for p in bf16.directory.glob("*.npy")}
    again = TeacherCache(cache_teacher, train_set, root=tmp_path)
    again.ensure(FEATURES, dtypes=("bfloat16", "bfloat16"))
    again.ensure(FEATURES)
    assert again.built == []  # both hits


def test_a_feature_beyond_float16s_range_is_stored_in_float32(cache_teacher, train_set, tmp_path, caplog):
    with torch.no_grad():
        cache_teacher.bert.encoder.layer[1].output.LayerNorm.weight.mul_(1e6)
    feature = ("bert.encoder.layer.1.output", ())
    cache = TeacherCache(cache_teacher, train_set, root=tmp_path)
    cache.ensure([feature, LOGITS], dtypes=("float16", "float16"))
    assert "exceed float16's range" in caplog.text
    idx = torch.tensor([0, 9])
    read = cache.lookup(idx, [feature], CPU).get(*feature)
    assert torch.isfinite(read).all()
    assert torch.equal(read, _live(cache_teacher, train_set, idx).hidden_states[2])
    again = TeacherCache(cache_teacher, train_set, root=tmp_path)
    again.ensure([feature, LOGITS], dtypes=("float16", "float16"))
    assert again.built == []  # the float32 file is found


def test_a_forced_bf16_distillation_caches_its_teacher_in_bf16(cache_teacher, train_set, tmp_path):
    student = tiny_bert(hidden=16, layers=1, heads=2, labels=2, seed=1)
    plan = DistillationPlan(stages=(Stage(name="regular", kind="regular", train_steps=2,
                                          logit_kd=LogitKD(loss_types=("KL", "CE"))),),
                            precision="bf16", precision_force=True, progress=False, device="cpu")
    cache = TeacherCache(cache_teacher, train_set, root=tmp_path)
    Distiller(cache_teacher, student, plan, teacher_cache=cache).fit(
        make_loader(train_set, batch_size=16, shuffle=True))
    assert cache.dtypes == ("bfloat16", "bfloat16") and cache.built == [LOGITS]


def _fine_tune_config(workspace, out, precision: str):
    from test_search import write_config

    return write_config(workspace, out, **{
        "  model: {root}/teacher\n".format(root=workspace):
            f"  model: {workspace}/teacher\n  fine_tune: {{epochs: 1, batch_size: 32}}\n",
        "  progress: false\n": f"  progress: false\n  {precision}\n"})


def test_the_teacher_fine_tunes_at_the_runs_precision_in_a_folder_of_its_own(workspace, tmp_path):
    from autodistill.config.loader import load_config_file
    from autodistill.config.schema import SearchRunConfig
    from autodistill.study.task import DistillationTask

    folders = {}
    for precision in ("precision: fp32", "precision: bf16\n  precision_force: true"):
        config = load_config_file(SearchRunConfig, _fine_tune_config(workspace, tmp_path / "run", precision))
        task = DistillationTask(config, quiet=True)
        folders[precision[11:15]] = Path(task.teacher_location)
    assert folders["fp32"] != folders["bf16"]  # the key holds the precision
    assert json.loads((folders["bf16"] / "finetune.json").read_text())["precision"] == "bf16"
    assert json.loads((folders["fp32"] / "finetune.json").read_text())["precision"] == "fp32"


@pytest.mark.skipif(cpu_has_bf16(), reason="this CPU has bf16 hardware: bf16 is not refused here")
def test_a_bf16_fine_tune_on_a_cpu_without_bf16_is_refused_unless_forced(workspace, tmp_path):
    from autodistill.config.loader import load_config_file
    from autodistill.config.schema import SearchRunConfig
    from autodistill.preflight import check_precision

    path = _fine_tune_config(workspace, tmp_path / "run", "precision: bf16\n  device: cpu")
    config = load_config_file(SearchRunConfig, path)  # config checks no hardware: the edge does, first
    with pytest.raises(ConfigError, match=r"auto_distillation\.precision: .*bf16 on this CPU.*precision_force"):
        check_precision(config.auto_distillation, key="auto_distillation")
