"""The fine-tuned teacher's folder: what a fine-tune killed while saving leaves behind."""

from __future__ import annotations

import re
import subprocess
import sys

from autodistill.atomic_file import remove_dead_temporaries, temporary_path


def test_only_temporary_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        own = temporary_path(tmp_path / "abc")  # a fine-tune's temporary: `.abc.<host>~<pid>.<thread>.tmp`
        abandoned = own.with_name(re.sub(r"~\d+\.", f"~{dead.pid}.", own.name))
        running = own.with_name(re.sub(r"~\d+\.", f"~{live.pid}.", own.name))
        other_host = tmp_path / f".abc.elsewhere~{dead.pid}.1.tmp"
        complete = tmp_path / "abc"
        for folder in (abandoned, running, other_host, complete, own):
            folder.mkdir()
            (folder / "model.safetensors").write_bytes(b"w")

        assert remove_dead_temporaries(tmp_path) == [abandoned]

        assert not abandoned.exists()
        assert running.exists() and other_host.exists() and complete.exists() and own.exists()
    finally:
        live.kill()
        live.wait()
