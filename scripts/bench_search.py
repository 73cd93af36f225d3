"""Benchmark the search (issue 5): Pareto-front hypervolume per advisor, and search wall time
with the speed features on and off, on the built-in example's space (configs/quickstart.yaml).

    .venv/bin/python scripts/bench_search.py                      # BO TPE skopt random x seeds 0 1 2, 8 trials
    .venv/bin/python scripts/bench_search.py --features           # BO seed 0: features on, then off
    .venv/bin/python scripts/bench_search.py --trials 2 --seeds 0 --algorithms random BO \\
        --limit 60 --regular-steps 4 --flash-steps 2                 # a smoke run, a few minutes
    .venv/bin/python scripts/bench_search.py --ask-cost 300          # CPU s of one BO ask, 40% repeats

`--ask-cost N` trains nothing: it times one ask of each --algorithms (default BO) in an in-memory
study of N proxy-like trials over the config's space (architectures drawn with the search's own
`SearchSpace.sample`, valid ones only, synthetic accuracy and latency), `--ask-repeats` of them
(default 0.4) repeats recorded as the search records them (the earlier trial's values,
`repeat_of`). Each ask is a fresh advisor (no warm-started kernel) on one torch thread, timed
in CPU seconds (`time.process_time`), median of 3; beside it, the same sampler asked of the raw
study, which sees every repeat as a complete trial (what the advisor saw before
advisors/advisor_view.py hid them; the study holds no pruned trial, so that is all the view changes).

`--proxy-cost K` trains nothing either: for K architectures spread over the config's space
(scripts/bench_supernet.py's `spread_architectures`), sliced out of the trained supernet under
--output-dir (runs/quickstart has the quickstart's), it runs a proxy trial's work (ProxyTask:
extract, cost, evaluate) with the config as it is (eager) and with `evaluation.deployment`
onnxruntime + --proxy-quantization (default dynamic_int8), after one untimed warm-up of each,
alternating which goes first, and prints the CPU seconds (`time.process_time`: ONNX Runtime's
threads are the process's) of each and their ratio.

Two modes, one loop: every run is one search = (features variant, algorithm, seed).
- Advisor comparison (no --features): variant `config`, the config as loaded (its own
  teacher_cache, init_from_teacher, early_stopping and constraints, printed at the start); by
  default the algorithms BO TPE skopt random and the search seeds 0 1 2.
- Feature comparison (--features on|off|both; bare --features = both): by default BO, seed 0.
  `on`  = every cost-cutting feature of issue 5: teacher_cache true, student.init_from_teacher
          true, the config's early_stopping (or {eval_every_steps: 25} where it has none) and the
          config's search.constraints (latency-first screening; quickstart: min_speedup 5);
  `off` = teacher_cache false, init_from_teacher false, no early_stopping, no constraints
          (every proposed architecture is trained to the end with the teacher run live).
  Both keep the same budget of finished trials, so `on` trains only architectures inside the
  constraints, and `off` also trains the slow ones `on` screens out: the wall-time ratio is
  what the features save a search, and the hypervolumes show what the fronts give up.
  Explicit --algorithms / --seeds run every combination with every variant.
The seed varied is the advisor's (`search.seed`); the training seed
(`auto_distillation.seed`) stays the config's, so runs differ only by what the advisor proposes
(and by timing noise in latency). The budget is --trials finished trials per search
(`max_trials`: repeats and impossible architectures do not count, early-stopped and failed ones do).

Start-up trials: a model-based advisor (BO, TPE, skopt) proposes at random, through a sampler
seeded with the same seed, until `search.startup_trials` trials are complete (default: a third
of max_trials, between 3 and 10; early-stopped, screened and impossible trials are not
complete), so its first proposals are exactly those of `random` with that seed. The per-search
table's "same proposals as" column shows where this happens; --startup-trials N sets
`search.startup_trials` (study names get `-stN`).

Layout under --output-dir (default runs/bench_search):
    studies.db                   every search is its own study, <variant>-<algorithm>-s<seed>[-stN]
    teacher/<key>/               the fine-tuned teacher (from --teacher-from, default --output-dir)
    runs/<study name>/           each search's own output_dir: trials/NNNNN, teacher_cache/,
                                 search.log, pareto.json
Each search needs its own output_dir: students are saved as `<output_dir>/trials/<trial number>`
and trial numbers restart at 0 in every study, so two studies in one folder would overwrite
each other's students. The teacher is shared the simplest way: it is fine-tuned (or found,
keyed by base weights, data and settings, as `autodistill search` does) once, before any timing,
under `<teacher-from>/teacher/`, and every search's config then names that folder as
`teacher.model` (with `model_package` and `fine_tune` cleared), so no search fine-tunes and no
symlinks are needed. `--teacher-from runs/quickstart` reuses the fine-tune of `make search` when
the data settings match (full data, no --limit). The teacher-output cache is NOT shared: each
search with teacher_cache on builds its own under its runs/<name>/teacher_cache, so its wall
time includes that cost, as a fresh search's would.

Wall time per search is `run_search` end to end: load data and tokenise, load the teacher,
measure the teacher (latency, validation and test accuracy), build the teacher cache when on,
then every trial (latency, flash + regular distillation, evaluation, save). It is stored in the
study (user attr `bench`), so --report-only re-prints the tables of an earlier run.

Hypervolume (2-D): maximise accuracy (validation, the objective the search uses), minimise
latency. Points are the COMPLETE trials without `repeat_of` (early-stopped trials are PRUNED
and add nothing). Two figures:
- `HV paired` (the one to compare): latency as a fraction of the teacher's, 1 / the trial's
  paired `speedup` (teacher and student timed call for call in the same trial), reference
  point (--ref-accuracy, 1.0), divided by (1 - ref accuracy), so in [0, 1]. Load on the
  machine slows teacher and student alike, so this figure survives a busy machine; absolute
  milliseconds do not (the teacher's own p50 on this 2-core CPU ranged 17-28 ms between
  studies of one run).
- `HV acc*ms` / `HV norm`: absolute p50 ms, reference latency the study's one-off teacher
  p50 (user attr `teacher`) or --ref-latency; `HV norm` divides by the reference box.
Only students faster than the teacher add volume. The own sweep (sort by latency, sum
rectangles) is cross-checked once against `optuna._hypervolume.compute_hypervolume`.

It prints figures and asserts nothing: a measuring tool, not a test. The machine is a shared
2-core CPU: load average is printed at start and end; a busy machine inflates wall time.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import gc
import json
import math
import platform
import random
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from autodistill.advisors import ADVISORS
from autodistill.config.schema import EarlyStoppingSection, SearchRunConfig
from autodistill.space import Architecture, SearchSpace
from autodistill.study.pareto import non_dominated
from autodistill.study.record import REPEAT_OF, TrialRecord
from autodistill.study.record import TEACHER as TEACHER_ATTR
from autodistill.study.run import load_search_config, run_search
from autodistill.study.storage import open_storage

BENCH_ATTR = "bench"
RETENTION = 0.97  # "fastest student with accuracy >= 97% of the teacher's"
VARIANTS = ("on", "off")


# -- configuration ------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/quickstart.yaml")
    p.add_argument("--trials", type=int, default=8, help="finished trials per search (max_trials)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="advisor seeds (default 0 1 2; with --features: 0)")
    p.add_argument("--algorithms", nargs="+", default=None,
                   help="search_algorithm names (default BO TPE skopt random; with --features: BO)")
    p.add_argument("--features", nargs="?", const="both", choices=("on", "off", "both"), default=None,
                   help="feature comparison: on, off or both (bare --features = both)")
    p.add_argument("--limit", type=int, default=None, help="data.limit: a small stratified sample per split")
    p.add_argument("--regular-steps", type=int, default=None,
                   help="regular_distillation.train_steps (replaces epochs)")
    p.add_argument("--flash-steps", type=int, default=None, help="flash_distillation.train_steps per block")
    p.add_argument("--output-dir", default="runs/bench_search")
    p.add_argument("--teacher-from", default=None,
                   help="an output dir whose teacher/ holds (or will hold) the fine-tuned teacher "
                        "(default: --output-dir; e.g. runs/quickstart to reuse make search's)")
    p.add_argument("--ref-accuracy", type=float, default=0.0, help="hypervolume reference accuracy")
    p.add_argument("--ref-latency", type=float, default=None,
                   help="hypervolume reference latency in ms (default: each study's teacher p50)")
    p.add_argument("--startup-trials", type=int, default=None,
                   help="search.startup_trials: complete trials before BO, TPE and skopt model the "
                        "results (default: the config's, else a third of --trials between 3 and 10)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete a study (and its run folder) of the same name before running it")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: print the tables of the studies already in --output-dir")
    p.add_argument("--verbose", action="store_true", help="progress bars and per-stage output")
    p.add_argument("--ask-cost", type=int, default=None, metavar="N",
                   help="train nothing: CPU time of one ask in a study of N proxy-like trials")
    p.add_argument("--ask-repeats", type=float, default=0.4,
                   help="--ask-cost: the fraction of its trials that repeat an earlier one")
    p.add_argument("--proxy-cost", type=int, default=None, metavar="K",
                   help="train nothing: CPU s of a proxy trial of K supernet slices, eager vs deployed")
    p.add_argument("--proxy-quantization", default="dynamic_int8", choices=("none", "dynamic_int8", "static_int8"),
                   help="--proxy-cost: the deployed side's evaluation.deployment.quantization (onnxruntime)")
    args = p.parse_args(argv)
    if args.algorithms is None:
        args.algorithms = ["BO"] if args.features or args.ask_cost else ["BO", "TPE", "skopt", "random"]
    if args.seeds is None:
        args.seeds = [0] if args.features else [0, 1, 2]
    canonical = {name.lower(): name for name in ADVISORS.names()}
    for i, name in enumerate(args.algorithms):
        ADVISORS.get(name)  # a ConfigError listing the choices
        args.algorithms[i] = canonical[name.strip().lower()]
    for flag, value in (("--trials", args.trials), ("--limit", args.limit),
                        ("--regular-steps", args.regular_steps)):
        if value is not None and value < 1:
            p.error(f"{flag} must be >= 1")
    if args.flash_steps is not None and args.flash_steps < 0:
        p.error("--flash-steps must be >= 0 (0 skips flash distillation)")
    if args.startup_trials is not None and args.startup_trials < 2:
        p.error("--startup-trials must be >= 2")
    if any(s < 0 for s in args.seeds):
        p.error("--seeds must be >= 0")
    if args.ask_cost is not None and args.ask_cost < 2:
        p.error("--ask-cost must be >= 2")
    if args.proxy_cost is not None and args.proxy_cost < 1:
        p.error("--proxy-cost must be >= 1")
    if not 0 <= args.ask_repeats < 1:
        p.error("--ask-repeats must be in [0, 1)")
    return args


def variants_of(args: argparse.Namespace) -> list[str]:
    if args.features is None:
        return ["config"]
    return list(VARIANTS) if args.features == "both" else [args.features]


def with_overrides(config: SearchRunConfig, args: argparse.Namespace) -> SearchRunConfig:
    """The config with --trials, --startup-trials, --limit, --regular-steps and --flash-steps applied."""
    ad = config.auto_distillation
    search_update: dict[str, Any] = {"max_trials": args.trials, "study_name": None, "storage": None}
    if args.startup_trials is not None:
        search_update["startup_trials"] = args.startup_trials
    ad_update: dict[str, Any] = {"search": ad.search.model_copy(update=search_update)}
    if args.regular_steps is not None:
        if ad.regular_distillation is None:
            raise SystemExit("--regular-steps: the config has no regular_distillation")
        ad_update["regular_distillation"] = ad.regular_distillation.model_copy(
            update={"train_steps": args.regular_steps, "epochs": None})
    if args.flash_steps is not None:
        flash = ad.flash_distillation
        if flash is None:
            raise SystemExit("--flash-steps: the config has no flash_distillation")
        steps: Any = args.flash_steps if isinstance(flash.train_steps, int) \
            else [args.flash_steps] * len(flash.train_steps)
        ad_update["flash_distillation"] = flash.model_copy(update={"train_steps": steps})
    update: dict[str, Any] = {"auto_distillation": ad.model_copy(update=ad_update)}
    if args.limit is not None:
        update["data"] = config.data.model_copy(update={"limit": args.limit})
    return config.model_copy(update=update)


def search_config(config: SearchRunConfig, *, variant: str, algorithm: str, seed: int,
                  teacher_folder: str | None, output_dir: Path) -> SearchRunConfig:
    """One search's config: advisor and seed, the features variant, the shared teacher."""
    ad = config.auto_distillation
    search_update: dict[str, Any] = {"search_algorithm": algorithm, "seed": seed}
    ad_update: dict[str, Any] = {}
    student = config.student
    if variant == "on":
        ad_update.update(teacher_cache=True,
                         early_stopping=ad.early_stopping or EarlyStoppingSection(eval_every_steps=25))
        student = student.model_copy(update={"init_from_teacher": True})
    elif variant == "off":
        search_update["constraints"] = {}
        ad_update.update(teacher_cache=False, early_stopping=None)
        student = student.model_copy(update={"init_from_teacher": False})
    ad_update["search"] = ad.search.model_copy(update=search_update)
    update: dict[str, Any] = {"auto_distillation": ad.model_copy(update=ad_update), "student": student,
                              "output_dir": str(output_dir)}
    if teacher_folder is not None:
        update["teacher"] = config.teacher.model_copy(
            update={"model": teacher_folder, "model_package": None, "fine_tune": None})
    return config.model_copy(update=update)


def study_name(variant: str, algorithm: str, seed: int, startup: int | None = None) -> str:
    return f"{variant}-{algorithm}-s{seed}" + ("" if startup is None else f"-st{startup}")


def describe(config: SearchRunConfig) -> dict[str, Any]:
    ad = config.auto_distillation
    flash, regular = ad.flash_distillation, ad.regular_distillation
    latency = ad.evaluation.latency
    return {
        "flash train_steps per block": None if flash is None else flash.train_steps,
        "regular": None if regular is None else (
            f"train_steps {regular.train_steps}" if regular.train_steps is not None
            else f"epochs {regular.epochs}"),
        "data": f"{config.data.corpus or config.data.train_file}, limit {config.data.limit}, "
                f"max_length {config.data.max_length}, batch {config.data.batch_size}",
        "training seed": ad.seed,
        "latency": f"batch {latency.batch_size}, seq {latency.sequence_length or config.data.max_length}, "
                   f"threads {latency.threads}, repeats {latency.repeats}, warmup {latency.warmup}, "
                   f"{latency.device}",
        "teacher_cache / init_from_teacher / early_stopping / constraints (config)":
            f"{ad.teacher_cache} / {config.student.init_from_teacher} / "
            f"{None if ad.early_stopping is None else ad.early_stopping.model_dump()} / "
            f"{ad.search.constraints or None}",
    }


# -- the teacher, once --------------------------------------------------------------------
def prepare_teacher(config: SearchRunConfig, teacher_from: Path, *, quiet: bool) -> tuple[str | None, float]:
    """Fine-tune (or find) the teacher under `<teacher_from>/teacher/`; its folder and seconds.

    None when the config fine-tunes nothing (its teacher.model is used as it is)."""
    if config.teacher.fine_tune is None:
        return None, 0.0
    from autodistill.study.task import DistillationTask

    started = time.perf_counter()
    prep = config.model_copy(update={"auto_distillation": config.auto_distillation.model_copy(
        update={"teacher_cache": False})})
    task = DistillationTask(prep, output_dir=teacher_from, quiet=quiet)
    folder, reused = task.teacher_location, task.teacher_reused
    del task
    gc.collect()
    seconds = time.perf_counter() - started
    print(f"teacher: {'reused' if reused else 'fine-tuned'} {folder} ({seconds:.1f} s, not in any search's "
          f"wall time)")
    return folder, seconds


# -- hypervolume --------------------------------------------------------------------------
def hypervolume_2d(points: Sequence[tuple[float, float]], ref_accuracy: float, ref_latency: float) -> float:
    """Area dominated by (accuracy, latency) points (maximise, minimise) inside the reference box.

    Sort by latency; over [lat_i, lat_{i+1}) (the last up to ref_latency) the dominated height
    is the best accuracy among points at most that slow, minus ref_accuracy. Points outside the
    box (not faster than ref_latency, or not above ref_accuracy) add nothing; dominated points
    are harmless."""
    inside = sorted((lat, acc) for acc, lat in points if lat < ref_latency and acc > ref_accuracy)
    volume, best = 0.0, ref_accuracy
    for i, (lat, acc) in enumerate(inside):
        best = max(best, acc)
        right = inside[i + 1][0] if i + 1 < len(inside) else ref_latency
        volume += (right - lat) * (best - ref_accuracy)
    return volume


def optuna_hypervolume(points: Sequence[tuple[float, float]], ref_accuracy: float,
                       ref_latency: float) -> float | None:
    """The same volume by Optuna's (private) implementation, in minimisation form; None if absent."""
    try:
        import numpy as np
        from optuna._hypervolume import compute_hypervolume
    except ImportError:
        return None
    inside = [(-acc, lat) for acc, lat in points if lat < ref_latency and acc > ref_accuracy]
    if not inside:
        return 0.0
    return float(compute_hypervolume(np.asarray(inside, dtype=float),
                                     np.asarray([-ref_accuracy, ref_latency], dtype=float)))


# -- figures of one study -----------------------------------------------------------------
@dataclass
class RunFigures:
    name: str
    variant: str
    algorithm: str
    seed: int
    startup: int | None
    wall_s: float | None
    teacher_accuracy: float | None
    teacher_latency: float | None
    ref_latency: float | None
    states: dict[str, int]
    points: list[tuple[float, float]] = field(default_factory=list)
    front: list[tuple[float, float]] = field(default_factory=list)
    hypervolume: float | None = None
    hv_normalised: float | None = None
    hv_paired: float | None = None  # over (accuracy, 1 / paired speed-up), reference (ref_acc, 1)
    best_speedup_at_retention: float | None = None  # paired
    best_accuracy: float | None = None
    fastest_at_retention: float | None = None
    data_sizes: dict[str, int] | None = None
    proposals: list[str] = field(default_factory=list)
    trial_s: float = 0.0  # sum of the trials' train_seconds (build, latency, distillation)
    error: str | None = None


def figures(study: optuna.Study, *, ref_accuracy: float, ref_latency: float | None) -> RunFigures:
    bench = study.user_attrs.get(BENCH_ATTR) or {}
    teacher = study.user_attrs.get(TEACHER_ATTR) or {}
    names = list(study.metric_names or [])
    directions = [d.name.lower() for d in study.directions]
    i_acc = names.index("accuracy") if "accuracy" in names else directions.index("maximize")
    i_lat = names.index("latency") if "latency" in names else directions.index("minimize")
    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            kind = "repeat" if t.user_attrs.get("repeat_of") is not None else "trained"
        elif t.state == TrialState.PRUNED:
            attrs = t.user_attrs
            kind = "invalid" if "invalid_reason" in attrs else "screened" if "screened_reason" in attrs \
                else "stopped"
        else:
            kind = t.state.name.lower()
        states[kind] = states.get(kind, 0) + 1
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("repeat_of") is None]
    points = [(float(t.values[i_acc]), float(t.values[i_lat])) for t in done]
    relative = [(float(t.values[i_acc]), 1.0 / float(t.user_attrs["speedup"]))
                for t in done if t.user_attrs.get("speedup")]
    front = [points[i] for i in non_dominated(points, ["maximize", "minimize"])]
    t_acc, t_lat = teacher.get("accuracy"), teacher.get("latency_p50_ms")
    ref_lat = ref_latency if ref_latency is not None else t_lat
    run = RunFigures(name=study.study_name, variant=bench.get("variant", "?"),
                     algorithm=bench.get("algorithm", "?"), seed=bench.get("seed", -1),
                     startup=bench.get("startup_trials"),
                     wall_s=bench.get("wall_s"), teacher_accuracy=t_acc, teacher_latency=t_lat,
                     ref_latency=ref_lat, states=states, points=points, front=sorted(front, key=lambda p: p[1]),
                     data_sizes=(study.user_attrs.get("data") or {}).get("sizes"),
                     proposals=[json.dumps(t.params, sort_keys=True) for t in trials],
                     error=bench.get("error"),
                     trial_s=sum(float(t.user_attrs.get("train_seconds") or 0.0) for t in trials))
    if ref_lat is not None:
        run.hypervolume = hypervolume_2d(front, ref_accuracy, ref_lat)
        box = (1.0 - ref_accuracy) * ref_lat
        run.hv_normalised = run.hypervolume / box if box > 0 else None
    if relative and ref_accuracy < 1.0:
        rel_front = [relative[i] for i in non_dominated(relative, ["maximize", "minimize"])]
        run.hv_paired = hypervolume_2d(rel_front, ref_accuracy, 1.0) / (1.0 - ref_accuracy)
    if points:
        run.best_accuracy = max(acc for acc, _ in points)
    if t_acc is not None:
        fast = [lat for acc, lat in points if acc >= RETENTION * t_acc]
        run.fastest_at_retention = min(fast) if fast else None
        kept = [1.0 / rel for acc, rel in relative if acc >= RETENTION * t_acc]
        run.best_speedup_at_retention = max(kept) if kept else None
    return run


# -- printing -----------------------------------------------------------------------------
def _f(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def _spread(values: Sequence[float | None], spec: str) -> str:
    have = [v for v in values if v is not None]
    if not have:
        return "-"
    if len(have) == 1:
        return format(have[0], spec)
    return f"{format(statistics.mean(have), spec)} [{format(min(have), spec)}, {format(max(have), spec)}]"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(str(cell).ljust(w) if c < left else str(cell).rjust(w)
                         for c, (cell, w) in enumerate(zip(r, widths))).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def same_proposals(run: RunFigures, runs: Sequence[RunFigures]) -> str:
    """Other algorithms (same variant, seed, start-up) whose asked architectures, in order, are
    identical to this run's over the shorter of the two sequences."""
    same = []
    for other in runs:
        if other is run or (other.variant, other.seed, other.startup) != (run.variant, run.seed, run.startup):
            continue
        n = min(len(run.proposals), len(other.proposals))
        if n and run.proposals[:n] == other.proposals[:n]:
            same.append(other.algorithm)
    return ",".join(same) or "-"


def print_runs(runs: Sequence[RunFigures]) -> None:
    rows = []
    for r in runs:
        states = " ".join(f"{k}={v}" for k, v in sorted(r.states.items()))
        speedup = None if r.fastest_at_retention is None or not r.teacher_latency \
            else r.teacher_latency / r.fastest_at_retention
        rows.append([r.name, _f(r.teacher_accuracy), _f(r.teacher_latency, ".2f"), states, str(len(r.front)),
                     _f(r.hypervolume, ".4f"), _f(r.hv_normalised, ".4f"), _f(r.hv_paired), _f(r.best_accuracy),
                     "-" if r.fastest_at_retention is None
                     else f"{r.fastest_at_retention:.2f} ({speedup:.1f}x)" if speedup
                     else _f(r.fastest_at_retention, ".2f"),
                     "-" if r.best_speedup_at_retention is None else f"{r.best_speedup_at_retention:.1f}x",
                     _f(r.wall_s, ".1f"), f"{r.trial_s:.1f}", same_proposals(r, runs)])
    print(table(["study", "teacher acc", "teacher ms", "trials", "front", "HV acc*ms", "HV norm", "HV paired",
                 "best acc", f"fastest ms @>={RETENTION:.0%}", f"best paired speed-up @>={RETENTION:.0%}",
                 "wall s", "in trials s", "same proposals as"],
                rows))
    for r in runs:
        if r.error:
            print(f"  {r.name} ended with an error: {r.error}")
    for r in runs:
        front = ", ".join(f"({acc:.4f}, {lat:.2f} ms)" for acc, lat in r.front) or "empty"
        print(f"  front of {r.name}: {front}")


def print_summary(runs: Sequence[RunFigures]) -> None:
    groups: dict[tuple[str, str], list[RunFigures]] = {}
    for r in runs:
        groups.setdefault((r.variant, r.algorithm), []).append(r)
    rows = []
    for (variant, algorithm), group in groups.items():
        fast = [r.fastest_at_retention for r in group]
        found = sum(v is not None for v in fast)
        rows.append([variant, algorithm, ",".join(str(r.seed) for r in group),
                     _spread([r.hv_paired for r in group], ".4f"),
                     _spread([r.hv_normalised for r in group], ".4f"),
                     _spread([r.best_accuracy for r in group], ".4f"),
                     f"{_spread(fast, '.2f')} ({found}/{len(group)})",
                     _spread([r.best_speedup_at_retention for r in group], ".1f"),
                     _spread([r.wall_s for r in group], ".1f")])
    print(table(["variant", "algorithm", "seeds", "HV paired mean [min, max]", "HV norm mean [min, max]",
                 "best acc mean [min, max]", f"fastest ms @>={RETENTION:.0%} (found)",
                 f"paired speed-up @>={RETENTION:.0%}",
                 "wall s/search mean [min, max]"], rows, left=3))


def print_features(runs: Sequence[RunFigures]) -> None:
    pairs: dict[tuple[str, int], dict[str, RunFigures]] = {}
    for r in runs:
        if r.variant in VARIANTS:
            pairs.setdefault((r.algorithm, r.seed, r.startup), {})[r.variant] = r
    rows = []
    for (algorithm, seed, _), pair in pairs.items():
        on, off = pair.get("on"), pair.get("off")
        ratio = None if not (on and off and on.wall_s and off.wall_s) else on.wall_s / off.wall_s
        trained = "/".join("-" if r is None else str(r.states.get("trained", 0)) for r in (on, off))
        stopped = "/".join("-" if r is None else str(r.states.get("stopped", 0) + r.states.get("fail", 0))
                           for r in (on, off))
        rows.append([algorithm, str(seed), _f(on and on.wall_s, ".1f"), _f(off and off.wall_s, ".1f"),
                     _f(ratio, ".3f"), "-" if ratio is None else f"{1 / ratio:.2f}x", trained, stopped,
                     _f(on and on.hv_paired), _f(off and off.hv_paired),
                     _f(on and on.best_accuracy), _f(off and off.best_accuracy)])
    if rows:
        print(table(["algorithm", "seed", "wall on s", "wall off s", "on/off", "speed-up",
                     "trained on/off", "stopped+failed on/off",
                     "HV paired on", "HV paired off", "best acc on", "best acc off"], rows, left=2))


def hv_check(runs: Sequence[RunFigures], ref_accuracy: float) -> None:
    """Own sweep vs Optuna's, once: on the first study with a point inside its box, else a made-up set."""
    for r in runs:
        if r.ref_latency is not None and any(lat < r.ref_latency and acc > ref_accuracy for acc, lat in r.front):
            points, ref_lat, what = r.front, r.ref_latency, f"front of {r.name}"
            break
    else:
        points, ref_lat = [(0.9, 2.0), (0.95, 5.0), (0.7, 1.0), (0.8, 3.0)], 10.0
        what = "a made-up set (no study has a front)"
    ours, theirs = hypervolume_2d(points, ref_accuracy, ref_lat), optuna_hypervolume(points, ref_accuracy, ref_lat)
    diff = "" if theirs is None else f", difference {abs(ours - theirs):.2e}"
    print(f"hypervolume check on {what}, reference ({ref_accuracy}, {ref_lat:.4g} ms): own {ours:.6f}, "
          f"optuna._hypervolume {'unavailable' if theirs is None else f'{theirs:.6f}'}{diff}")


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unavailable"


def busy_warning() -> None:
    """Latency is a benchmark: other work on the cores inflates it (and wall time) many-fold."""
    try:
        one_minute = os.getloadavg()[0]
    except OSError:
        return
    cores = os.cpu_count() or 1
    if one_minute > 0.5 * cores:
        print(f"WARNING: 1-minute load average {one_minute:.2f} on {cores} cores: other work is running; "
              f"latencies (so hypervolumes) and wall times are not reliable")


# -- the cost of one ask (--ask-cost) ---------------------------------------------------
def proxy_like_study(space: SearchSpace, n_trials: int, repeat_fraction: float, seed: int) -> optuna.Study:
    """An in-memory study of `n_trials` complete trials over `space`: distinct valid architectures
    (heads dividing the hidden size, where the space has both) with a synthetic (accuracy, latency),
    and `repeat_fraction` of them repeats of an earlier one, recorded as the search records them."""
    rng = random.Random(seed)
    study = optuna.create_study(directions=["maximize", "minimize"])
    distributions = space.distributions()

    def valid(architecture: Architecture) -> bool:
        heads = architecture.get("num_attention_heads")
        return heads is None or int(architecture.get("hidden_size", heads)) % int(heads) == 0

    first: list[optuna.trial.FrozenTrial] = []
    n_repeats = round(n_trials * repeat_fraction)
    repeat_at = set(rng.sample(range(1, n_trials), n_repeats))  # trial 0 has nothing to repeat
    for number in range(n_trials):
        if number in repeat_at:
            earlier = rng.choice(first)
            record = TrialRecord.from_trial(earlier).reused(repeat_of=earlier.number)
            params, values, attrs = earlier.params, earlier.values, record.to_attrs()
        else:
            architecture = space.sample(rng, avoid={Architecture.from_params(t.params).key() for t in first},
                                        valid=valid)
            if architecture is None:
                raise SystemExit(f"--ask-cost {n_trials}: the space holds too few valid architectures")
            size = math.prod(float(v) for v in architecture.values() if isinstance(v, (int, float)))
            params = architecture.to_dict()
            values = [1 - 1 / math.log(size + math.e) + rng.gauss(0, 0.01), size ** 0.5]
            attrs = {"accuracy": values[0], "latency_ms": values[1], "fidelity": "proxy"}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, values=values,
                                                  user_attrs=attrs))
        if number not in repeat_at:
            first.append(study.trials[-1])
    return study


def ask_seconds(study: optuna.Study, sampler: optuna.samplers.BaseSampler, space: SearchSpace) -> float:
    """CPU seconds of one ask (and its suggestions) by `sampler`; the trial is then failed (unseen)."""
    study.sampler = sampler
    started = time.process_time()
    trial = study.ask()
    space.suggest(trial)
    seconds = time.process_time() - started
    study.tell(trial, state=TrialState.FAIL)
    return seconds


def ask_cost(args: argparse.Namespace) -> int:
    import torch

    from autodistill.advisors import AdvisorView, make_advisor

    torch.set_num_threads(1)  # CPU time of one thread: other work on the cores does not add to it
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    section = load_search_config(args.config).auto_distillation.search
    space = SearchSpace.from_mapping(section.search_space, source="search.search_space")
    study = proxy_like_study(space, args.ask_cost, args.ask_repeats, seed=0)
    repeats = sum(REPEAT_OF in t.user_attrs for t in study.trials)
    print(f"bench_search --ask-cost: {' '.join(sys.argv[1:])}")
    print(f"load average at start (1/5/15 min): {load_average()}; optuna {optuna.__version__}, torch "
          f"{torch.__version__}, 1 torch thread")
    print(f"study: {len(study.trials)} complete trials over {args.config}'s space ({space.size()} "
          f"architectures), {repeats} of them repeats; CPU s of one ask, median of 3 fresh advisors")
    rows = []
    for algorithm in args.algorithms:
        timed: dict[str, list[float]] = {"seen": [], "raw": []}
        for seed in range(3):
            advisor = make_advisor(algorithm, space=space, seed=seed, n_objectives=2)
            timed["seen"].append(ask_seconds(study, advisor, space))
            if isinstance(advisor, AdvisorView):
                timed["raw"].append(ask_seconds(study, make_advisor(algorithm, space=space, seed=seed,
                                                                    n_objectives=2).sampler, space))
        seen, raw = (statistics.median(v) if v else None for v in (timed["seen"], timed["raw"]))
        rows.append([algorithm, _f(seen, ".3f"), _f(raw, ".3f"),
                     "-" if seen is None or raw is None else f"{raw / seen:.2f}x"])
    print(table(["advisor", "ask CPU s (as the search asks it)", "repeats seen as complete", "ratio"], rows))
    print(f"load average at end (1/5/15 min): {load_average()}")
    return 0


# -- the cost of a proxy trial, eager vs deployed (--proxy-cost) --------------------------
def proxy_cost(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_supernet import spread_architectures

    from autodistill.config.deployment import DeploymentSection
    from autodistill.study.supernet_search import ProxyTask, space_dimensions
    from autodistill.study.task import DistillationTask
    from autodistill.supernet import load_or_train_supernet
    from autodistill.supernet.store import SupernetStore

    config = load_search_config(args.config)
    ad, out = config.auto_distillation, Path(args.output_dir)
    deployment = DeploymentSection(runtime="onnxruntime", quantization=args.proxy_quantization)
    deployed = config.model_copy(update={"auto_distillation": ad.model_copy(update={
        "evaluation": ad.evaluation.model_copy(update={"deployment": deployment})})})
    print(f"bench_search --proxy-cost: {' '.join(sys.argv[1:])}")
    print(f"load average at start (1/5/15 min): {load_average()}")
    tasks = {"eager": DistillationTask(config, output_dir=out, quiet=True),
             "deployed": DistillationTask(deployed, output_dir=out, quiet=True)}
    for task in tasks.values():  # the scale of latency_ms does not change the work measured
        task.reference_latency_ms = task.eager_reference_latency_ms = 1.0
    eager_task = tasks["eager"]
    space = SearchSpace.from_mapping(ad.search.search_space, source="search.search_space")
    key = eager_task.supernet_key(space_dimensions(space), ad.supernet.key_settings())
    if not SupernetStore(out / "supernet", key).finished():
        print(f"no trained supernet under {out / 'supernet' / key}: run the supernet search (or "
              "scripts/bench_supernet.py rank) with this --output-dir first")
        return 1
    elastic = load_or_train_supernet(
        eager_task.teacher, loader=eager_task.train_loader, space=space, section=ad.supernet,
        root=out / "supernet", key=key, teacher_cache=eager_task.teacher_cache, quiet=True,
        importance_batches=eager_task.importance_batches(ad.supernet.importance_batches))
    proxies = {mode: ProxyTask(task, elastic, fine_tune_steps=ad.supernet.proxy_fine_tune_steps)
               for mode, task in tasks.items()}
    print(f"{args.config}, deployed side: onnxruntime {args.proxy_quantization}; latency spec "
          f"{eager_task.latency_spec}; proxy fine-tune steps {ad.supernet.proxy_fine_tune_steps}")
    architectures = spread_architectures(eager_task, space, args.proxy_cost)
    for proxy in proxies.values():  # untimed: first calls (thread pools, loaders) cost what no later one does
        warm = proxy.build(architectures[0])
        proxy.cost(warm)
        proxy.evaluate(proxy.train(warm).model)
    rows, totals = [], {mode: 0.0 for mode in proxies}
    for index, architecture in enumerate(architectures):
        seconds, accuracy = {}, {}
        for mode in sorted(proxies, reverse=index % 2 == 1):  # each mode first every other time
            proxy = proxies[mode]
            started = time.process_time()
            model = proxy.build(architecture)
            proxy.cost(model)
            figures = proxy.evaluate(proxy.train(model).model)
            seconds[mode] = time.process_time() - started
            accuracy[mode] = figures["accuracy"]
            totals[mode] += seconds[mode]
        rows.append([str(dict(architecture)), f"{seconds['eager']:.2f}", f"{seconds['deployed']:.2f}",
                     f"{seconds['deployed'] / seconds['eager']:.2f}x", f"{accuracy['eager']:.4f}",
                     f"{accuracy['deployed']:.4f}"])
        print("  ".join(rows[-1]), flush=True)
    print(table(["architecture", "eager CPU s", "deployed CPU s", "ratio", "eager acc", "deployed acc"], rows))
    print(f"mean CPU s per architecture: eager {totals['eager'] / len(rows):.2f}, deployed "
          f"{totals['deployed'] / len(rows):.2f} ({totals['deployed'] / totals['eager']:.2f}x)")
    print(f"load average at end (1/5/15 min): {load_average()}")
    return 0


# -- main ---------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ask_cost is not None:
        return ask_cost(args)
    if args.proxy_cost is not None:
        return proxy_cost(args)
    started = time.perf_counter()
    import torch

    out = Path(args.output_dir)
    url = f"sqlite:///{out / 'studies.db'}"
    variants = variants_of(args)
    config = with_overrides(load_search_config(args.config), args)
    plan = [(v, a, s, args.startup_trials) for v in variants for a in args.algorithms for s in args.seeds]
    print(f"bench_search: {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(f"load average at start (1/5/15 min): {load_average()}; cores {os.cpu_count()}; torch threads "
          f"{torch.get_num_threads()}; python {platform.python_version()}, torch {torch.__version__}, "
          f"optuna {optuna.__version__}")
    print(f"config {args.config}: trials/search {args.trials}, seeds {args.seeds}, algorithms "
          f"{args.algorithms}, variants {variants}, searches {len(plan)}")
    for key, value in describe(config).items():
        print(f"  {key}: {value}")
    if args.features:
        ad = config.auto_distillation
        early = (ad.early_stopping or EarlyStoppingSection(eval_every_steps=25)).model_dump()
        print(f"  variant on : teacher_cache true, init_from_teacher true, early_stopping {early}, "
              f"constraints {ad.search.constraints or 'none'}")
        print("  variant off: teacher_cache false, init_from_teacher false, no early_stopping, constraints none")
    startup = config.auto_distillation.search.random_startup_trials
    print(f"  advisors' random start-up trials (complete trials): {startup}")
    print(f"  hypervolume reference: accuracy {args.ref_accuracy}, latency "
          f"{args.ref_latency if args.ref_latency is not None else 'teacher p50 of each study'}")
    print(f"storage {url}; runs under {out / 'runs'}")
    busy_warning()

    storage = open_storage(url)
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if not args.report_only:
        clash = [study_name(*p) for p in plan if study_name(*p) in existing]
        if clash and not args.overwrite:
            print(f"studies already in {url}: {', '.join(clash)}; pass --overwrite to redo them, "
                  f"--report-only to print them, or another --output-dir", file=sys.stderr)
            return 2
        teacher_folder, _ = prepare_teacher(config, Path(args.teacher_from or out), quiet=not args.verbose)
        for i, (variant, algorithm, seed, startup) in enumerate(plan, 1):
            name = study_name(variant, algorithm, seed, startup)
            run_dir = out / "runs" / name
            if name in existing:
                optuna.delete_study(study_name=name, storage=storage)
            shutil.rmtree(run_dir, ignore_errors=True)
            cfg = search_config(config, variant=variant, algorithm=algorithm, seed=seed,
                                teacher_folder=teacher_folder, output_dir=run_dir)
            print(f"[{i}/{len(plan)}] {name}: load {load_average()} ...", flush=True)
            t0 = time.perf_counter()
            error = None
            try:
                run_search(cfg, storage=url, study_name=name, output_dir=str(run_dir), quiet=not args.verbose)
            except Exception as exc:  # noqa: BLE001  # e.g. SearchStopped (max_consecutive_failures): go on
                error = f"{type(exc).__name__}: {exc}"[:500]
            wall = time.perf_counter() - t0
            if name in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
                optuna.load_study(study_name=name, storage=storage).set_user_attr(BENCH_ATTR, {
                    "variant": variant, "algorithm": algorithm, "seed": seed, "startup_trials": startup,
                    "wall_s": wall, "error": error, "trials": args.trials, "limit": args.limit,
                    "regular_steps": args.regular_steps, "flash_steps": args.flash_steps,
                    "config": args.config})
            print(f"[{i}/{len(plan)}] {name}: {wall:.1f} s" + (f"; ERROR {error}" if error else ""), flush=True)
            gc.collect()
        existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}

    names = [study_name(*p) for p in plan if study_name(*p) in existing]
    missing = [study_name(*p) for p in plan if study_name(*p) not in existing]
    if missing:
        print(f"no study for: {', '.join(missing)}")
    runs = [figures(optuna.load_study(study_name=n, storage=storage), ref_accuracy=args.ref_accuracy,
                    ref_latency=args.ref_latency) for n in names]
    if runs and runs[0].data_sizes:
        print(f"data sizes: {json.dumps(runs[0].data_sizes)}")
    print()
    print("per search (accuracy = validation; latency = batch-1 p50; HV over the front, reference "
          "= teacher latency unless --ref-latency):")
    print_runs(runs)
    print()
    print("per algorithm, over seeds:")
    print_summary(runs)
    if any(r.variant in VARIANTS for r in runs):
        print()
        print("features on vs off (wall time of the whole search; on/off < 1 means the features save time):")
        print_features(runs)
    print()
    hv_check(runs, args.ref_accuracy)
    print(f"load average at end (1/5/15 min): {load_average()}")
    busy_warning()
    print(f"total wall time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
