"""`autodistill distill CONFIG.yaml`: one student distilled from files, no search."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from transformers import AutoModelForSequenceClassification

from autodistill.cli import main
from autodistill.losses import FeatureMatchers


def _config(root: Path, out: Path, extra: str = "") -> Path:
    text = f"""
teacher:
  model: {root / 'teacher'}
student:
  overrides: {{hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32}}
data:
  train_file: {root / 'train.csv'}
  validation_file: {root / 'dev.csv'}
  max_length: 12
  batch_size: 16
distillation:
  progress: false
  optimizer: {{name: AdamW, learning_rate: 0.003}}
  flash_distillation:
    block_names: [bert.encoder.layer.0]
    layer_mappings_for_knowledge_transfer:
      - - [bert.encoder.layer.0.attention.self, '1', bert.encoder.layer.1.attention.self, '1']
        - [bert.encoder.layer.0.output, bert.encoder.layer.1.output]
    loss_types: [[KL, MSE]]
    train_steps: [4]
  regular_distillation:
    train_steps: 6
    temperature: 2.0
output_dir: {out}
{extra}"""
    path = out.parent / f"{out.name}.yaml"
    path.write_text(text)
    return path


def test_distill_command_saves_a_reloadable_student_with_matchers(workspace, tmp_path, capsys):
    out = tmp_path / "student"
    assert main(["distill", str(_config(workspace, out)), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "flash[0]:bert.encoder.layer.0" in printed and "regular" in printed
    assert "validation accuracy" in printed
    student = AutoModelForSequenceClassification.from_pretrained(out)
    assert student.config.hidden_size == 16 and student.config.num_hidden_layers == 1
    assert (out / "tokenizer.json").exists() or (out / "vocab.txt").exists()
    matchers = FeatureMatchers.load(out)
    assert {s.kind for s in matchers.specs.values()} == {"linear", "head_mean"}
    assert (out / "distillation.json").exists()


def test_console_script_reports_a_bad_config_in_one_line(workspace, tmp_path):
    path = _config(workspace, tmp_path / "bad", extra="unknown_key: 1\n")
    exe = Path(sys.executable).parent / "autodistill"
    proc = subprocess.run([str(exe), "distill", str(path)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "unknown_key: unknown key" in lines[0] and "bad.yaml:" in lines[0]
    assert not (tmp_path / "bad").exists()  # nothing was trained or written


def test_unknown_student_override_key_is_a_config_error(workspace, tmp_path, capsys):
    path = _config(workspace, tmp_path / "s", extra="")
    path.write_text(path.read_text().replace("num_hidden_layers: 1", "num_hiden_layers: 1"))
    assert main(["distill", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "num_hiden_layers" in err and "did you mean 'num_hidden_layers'" in err
