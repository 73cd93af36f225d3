"""How long a search resumed after its own kill -9 takes to fail the killed trial, with the
heartbeat grace period at 120 s. It prints the figure and asserts nothing.

    nice -n 19 .venv/bin/python scripts/bench_dead_worker.py

The real CLI in subprocesses (tests/search_processes.py) on the tests' tiny teacher and data
(tests/conftest.py `write_workspace`, tests/test_search.py `write_config`): 2 trials of 30
steps, a heartbeat every second; the first run is killed with -9 inside a trial, then the same
command runs to the end. The killed trial's worker (`host:pid`) is a dead process of this host,
so the rerun fails it at once (study/lost_trials.py) instead of after the grace period.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_workspace
from search_processes import SearchProcess, read_trials
from test_search import write_config

GRACE = 120


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_dead_worker-"))
    (root / "ws").mkdir()
    workspace = write_workspace(root / "ws")
    out = root / "run"
    config = write_config(workspace, out, **{
        "    max_trials: 4\n": f"    max_trials: 2\n    heartbeat_seconds: 1\n    heartbeat_grace_seconds: {GRACE}\n",
        "    train_steps: 4\n": "    train_steps: 30\n"})
    db = out / "study.db"
    first = SearchProcess.start(config, logs=root / "1-killed")
    killed = first.stop_in_a_trial(db)
    first.kill()
    started = time.monotonic()
    rerun = SearchProcess.start(config, logs=root / "2-resumed")
    while {t.number: t.state for t in read_trials(db)}[killed.number] != "FAIL":
        if time.monotonic() - started > 2 * GRACE:
            print(f"trial {killed.number} not failed within {2 * GRACE} s")
            break
        time.sleep(0.2)
    else:
        print(f"trial {killed.number} (worker killed with -9) failed {time.monotonic() - started:.1f} s "
              f"after the rerun started (grace period {GRACE} s)")
    code = rerun.wait(timeout=600)
    print(f"rerun exit {code}, {time.monotonic() - started:.1f} s in all; files in {root}")


if __name__ == "__main__":
    main()
