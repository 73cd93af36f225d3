"""Figures for faults and workers: kill-and-resume cycles, and trials per minute with 1, 2
and 3 workers on PostgreSQL. It prints figures and asserts nothing.

    nice -n 19 .venv/bin/python scripts/bench_resume.py                 # both parts
    nice -n 19 .venv/bin/python scripts/bench_resume.py --cycles 10 --kill-trials 30 --workers 1 2 3 --worker-trials 24

Both parts run the real CLI (`python -m autodistill.cli search`) in subprocesses on the tests'
tiny teacher and data (tests/conftest.py `write_workspace`) and the tests' search config
(tests/test_search.py `write_config`: random advisor), with `--train-steps` regular-distillation
steps per trial, a heartbeat every second and a grace period of 10 s. Each process uses one
torch thread (OMP_NUM_THREADS=1).

Kill and resume (SQLite): a study of --kill-trials trials over 48 BERT students (hidden 8-32,
1-4 layers, 2-8 heads); --cycles times, start the search, wait
until one of its trials has run for 0.3 s, let it go on a random 0-3 s more, and kill -9 it,
whatever it is doing; then run the same command to the end. Figures: kills that landed in a
running trial, the study's finished trials (max_trials expected), lost trials (failed by the
heartbeat) and how many of their architectures were queued again, trained trials whose
student folder is missing or differs from when it was first seen.

Workers (PostgreSQL, a private server started as the tests do, tests/postgres_server.py): for
each N of --workers, a new database and output folder, N processes of the same command at
once on a study of --worker-trials trials of one cost (hidden 32, 2 layers, 2, 4 or 8 heads,
`allow_repeats: true`, so every trial trains and the figure is throughput, not luck in
which architectures each worker drew). Figures: wall time from the first start to the last exit,
and trials per minute over the search itself (first trial started to last trial finished,
from the study), which leaves out each process's start-up (imports, teacher, data).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import optuna  # noqa: E402
from conftest import write_workspace  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from postgres_server import PostgresServer, PostgresUnavailable  # noqa: E402
from search_processes import SearchProcess, read_trials  # noqa: E402
from test_search import write_config  # noqa: E402

from autodistill.study.record import FAILURE_REASON, INTERRUPTED, RETRY_OF  # noqa: E402
from autodistill.study.trials import finished_count  # noqa: E402

SPACE = ("      hidden_size: [8, 16, 24]\n      num_hidden_layers: {low: 1, high: 2}\n"
         "      num_attention_heads: [2, 3, 4]\n")
WIDER_SPACE = ("      hidden_size: [8, 16, 24, 32]\n      num_hidden_layers: {low: 1, high: 4}\n"
               "      num_attention_heads: [2, 4, 8]\n")
ONE_COST_SPACE = "      hidden_size: [32]\n      num_hidden_layers: [2]\n      num_attention_heads: [2, 4, 8]\n"


def _config(workspace: Path, out: Path, *, space: str, trials: int, train_steps: int,
            repeats: bool = False) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    search = (f"    max_trials: {trials}\n    heartbeat_seconds: 1\n    heartbeat_grace_seconds: 10\n"
              + ("    allow_repeats: true\n" if repeats else ""))
    return write_config(workspace, out, **{SPACE: space, "    max_trials: 4\n": search,
                                           "    train_steps: 4\n": f"    train_steps: {train_steps}\n"})


def _files(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def kill_and_resume(workspace: Path, out: Path, *, cycles: int, trials: int, train_steps: int, seed: int) -> None:
    rng = random.Random(seed)
    config = _config(workspace, out / "run", space=WIDER_SPACE, trials=trials, train_steps=train_steps)
    db = out / "run" / "study.db"
    students: dict[int, tuple[str, str]] = {}  # trained trial -> (folder, hash when first seen)
    in_trial = kills = 0
    started = time.monotonic()
    print(f"kill and resume: {cycles} cycles, a study of {trials} trials ({train_steps} regular steps each)")
    for cycle in range(1, cycles + 1):
        run = SearchProcess.start(config, logs=out / f"cycle{cycle:02d}")
        try:
            run.stop_in_a_trial(db, running_for=0.3, timeout=3600)
        except AssertionError as exc:  # it finished the study before a trial was caught
            print(f"  cycle {cycle:2d}: not killed ({str(exc)[:80]})")
            run.kill()
            break
        trials_then = run.go_on_for(rng.uniform(0.0, 3.0), db)
        kills += 1
        running = {t.number for t in trials_then if t.state == "RUNNING"
                   and str(t.attrs.get("worker", "")).endswith(run.worker_suffix)}
        run.kill()
        in_trial += bool(running)
        for t in read_trials(db):
            if t.trained and t.number not in students:
                students[t.number] = (t.attrs["student_path"], _files(Path(t.attrs["student_path"])))
        done = sum(t.trained for t in read_trials(db))
        print(f"  cycle {cycle:2d}: killed {'in trial ' + str(sorted(running)) if running else 'between trials'}; "
              f"{done} trained so far")
    final = SearchProcess.start(config, logs=out / "final")
    rc = final.wait(timeout=3600)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    trials_ = study.get_trials()
    lost = [t for t in trials_ if t.state == TrialState.FAIL and FAILURE_REASON not in t.user_attrs
            and INTERRUPTED not in t.user_attrs]
    retried = {t.user_attrs[RETRY_OF] for t in trials_ if RETRY_OF in t.user_attrs}
    damaged = [n for n, (path, digest) in students.items()
               if not Path(path).is_dir() or _files(Path(path)) != digest]
    print(f"  final run: exit code {rc}; {time.monotonic() - started:.0f} s in all")
    print(f"  kills that landed in a running trial: {in_trial} of {kills}")
    print(f"  finished trials: {finished_count(study)} (max_trials {trials}); trials in the study: {len(trials_)}")
    print(f"  lost trials (failed by the heartbeat): {len(lost)}; their architectures queued again: "
          f"{sum(t.number in retried for t in lost)}")
    print(f"  trained students missing or changed after the kills: {len(damaged)} of {len(students)}")
    print(f"  left running or queued: {sum(not t.state.is_finished() for t in trials_)}")


def workers(workspace: Path, out: Path, counts: list[int], *, trials: int, train_steps: int) -> None:
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        print(f"workers: skipped, no PostgreSQL server could be started: {exc}")
        return
    print(f"workers on PostgreSQL: a study of {trials} trials ({train_steps} regular steps each)")
    print("  workers  wall s  search s  trials/min (search)  finished  trained")
    with server:
        for n in counts:
            url = server.create_database(f"workers_{n}")
            config = _config(workspace, out / f"workers{n}", space=ONE_COST_SPACE, trials=trials,
                             train_steps=train_steps, repeats=True)
            started = time.monotonic()
            procs = [SearchProcess.start(config, "--storage", url, logs=out / f"workers{n}-{i}") for i in range(n)]
            codes = [p.wait(timeout=3600) for p in procs]
            wall = time.monotonic() - started
            study = optuna.load_study(study_name="tiny", storage=url)
            done = [t for t in study.get_trials() if t.state.is_finished() and t.datetime_complete]
            span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
            count = finished_count(study)
            trained = sum(t.state == TrialState.COMPLETE and "repeat_of" not in t.user_attrs for t in done)
            print(f"  {n:7d}  {wall:6.0f}  {span:8.1f}  {60 * count / span:19.1f}  {count:8d}  {trained:7d}"
                  + ("" if set(codes) == {0} else f"  exit codes {codes}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--kill-trials", type=int, default=30, help="max_trials of the killed study")
    parser.add_argument("--worker-trials", type=int, default=24, help="max_trials of each workers' study")
    parser.add_argument("--train-steps", type=int, default=50, help="regular-distillation steps per trial")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--seed", type=int, default=0, help="for the random delays before each kill")
    parser.add_argument("--output-dir", default="runs/bench_resume")
    parser.add_argument("--skip-kills", action="store_true")
    args = parser.parse_args()
    out = Path(args.output_dir).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.environ["OMP_NUM_THREADS"] = "1"  # the worker processes: one torch thread each
    workspace = out / "workspace"
    workspace.mkdir()
    write_workspace(workspace)
    if not args.skip_kills:
        kill_and_resume(workspace, out / "kills", cycles=args.cycles, trials=args.kill_trials,
                        train_steps=args.train_steps, seed=args.seed)
    if args.workers:
        workers(workspace, out / "workers", args.workers, trials=args.worker_trials, train_steps=args.train_steps)


if __name__ == "__main__":
    main()
