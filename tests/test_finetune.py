"""The fine-tuned teacher's folder: what a fine-tune killed while saving leaves behind."""

from __future__ import annotations

import subprocess
import sys

from autodistill.models.finetune import remove_abandoned


def test_only_temporary_folders_of_dead_processes_for_the_key_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        abandoned = tmp_path / f".abc.{dead.pid}.tmp"
        running = tmp_path / f".abc.{live.pid}.tmp"
        other_key = tmp_path / f".xyz.{dead.pid}.tmp"
        complete = tmp_path / "abc"
        for folder in (abandoned, running, other_key, complete):
            folder.mkdir()
            (folder / "model.safetensors").write_bytes(b"w")

        assert remove_abandoned(tmp_path, "abc") == [abandoned]

        assert not abandoned.exists()
        assert running.exists() and other_key.exists() and complete.exists()
    finally:
        live.kill()
        live.wait()
