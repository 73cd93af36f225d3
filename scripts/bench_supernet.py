"""Benchmark the supernet strategy (issue 13) on the built-in example (configs/quickstart.yaml).

    .venv/bin/python scripts/bench_supernet.py rank                 # Kendall tau and throughput, 12 architectures
    .venv/bin/python scripts/bench_supernet.py compare --seeds 0 1 2 # hypervolume at equal CPU time
    .venv/bin/python scripts/bench_supernet.py rank --architectures 4 --limit 200 --supernet-steps 20 \\
        --regular-steps 10 --flash-steps 2                          # a smoke run, a few minutes

`rank`: the supernet is trained (or found: it is stored under `<output-dir>/supernet/<key>/`
like a search's, so `--output-dir runs/quickstart` shares it and the fine-tuned teacher with
`make search`), then N architectures spread evenly over the valid points of the space
(sorted by parameter count) are each (a) scored as a proxy trial is: sliced out of the
supernet, validation accuracy, paired latency; and (b) trained in full as a final trial is:
from its supernet weights, flash + regular distillation as configured, validation accuracy.
Prints both accuracies per architecture, Kendall tau between them, and the throughput:
architectures scored per minute by proxy against trained per minute at full fidelity.

`compare`: per seed, a `strategy: supernet` search (its CPU time plus the supernet's one-off
training CPU time, which every seed is charged in full) against a `per_trial` BO search given the
same CPU time (run as `autodistill search` and stopped there with SIGTERM, as Ctrl-C would: finished
trials are kept); CPU time, because on a shared machine equal wall time favours the less loaded run.
Prints the hypervolume of each final front (validation accuracy against
latency as a fraction of the paired teacher's, scripts/bench_search.py's `HV paired`).
Asserts nothing; prints figures for docs/benchmarks.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# CPU time is the budget: with OpenMP's default policy a thread spins while a descheduled sibling
# runs elsewhere and that counts, so a loaded run is charged for waiting (the per_trial child
# inherits this too)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import itertools
import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import _f, figures, hypervolume_2d  # noqa: E402  (bench_search's hypervolume, reused)

from autodistill.config.schema import SearchRunConfig  # noqa: E402
from autodistill.errors import InvalidArchitecture  # noqa: E402
from autodistill.space import Architecture, SearchSpace  # noqa: E402
from autodistill.study.record import TEACHER  # noqa: E402
from autodistill.study.run import load_search_config, run_search  # noqa: E402
from autodistill.study.supernet_search import FinalTask, ProxyTask, space_dimensions  # noqa: E402
from autodistill.study.task import DistillationTask  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("part", choices=["rank", "compare", "refigure"])
    p.add_argument("--config", default="configs/quickstart.yaml")
    p.add_argument("--output-dir", default="runs/quickstart",
                   help="where the fine-tuned teacher and the supernet are found or stored")
    p.add_argument("--architectures", type=int, default=12, help="rank: how many architectures")
    p.add_argument("--full-accuracies", type=Path,
                   help="rank: a JSON file of known full-fidelity accuracies by architecture; those found "
                        "there are not trained again (proxies only), the others are trained and added")
    p.add_argument("--proxy-fine-tune-steps", type=int, nargs="+",
                   help="rank: proxy variants scored side by side, each sub-network first trained this many "
                        "steps (supernet.proxy_fine_tune_steps; default: the config's)")
    p.add_argument("--proxy-head", nargs="+", choices=["sliced", "refit"],
                   help="rank: proxy variants scored side by side by each head (supernet.proxy_head: the "
                        "sliced classifier, or a linear classifier refitted on its features; default: the "
                        "config's), with every --proxy-fine-tune-steps")
    p.add_argument("--no-latency", action="store_true",
                   help="rank: score proxies without their latency benchmark (tau only; the throughput "
                        "then counts scoring alone)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="compare: advisor seeds")
    p.add_argument("--limit", type=int, help="use only the first N examples of the corpus (smoke runs)")
    p.add_argument("--supernet-steps", type=int, help="supernet.train_steps (default: the config's)")
    p.add_argument("--proxy-trials", type=int, help="supernet.proxy_trials (default: the config's)")
    p.add_argument("--regular-steps", type=int, help="regular_distillation.train_steps (default: epochs)")
    p.add_argument("--flash-steps", type=int, help="flash_distillation.train_steps per block")
    p.add_argument("--calibration-steps", type=int, default=8,
                   help="compare: sandwich steps trained to measure the supernet's CPU time per step, "
                        "when its store record has none")
    p.add_argument("--charge-cpu-seconds", type=float,
                   help="compare: the supernet training's CPU seconds, as an earlier compare measured them "
                        "(seeds run in parallel measure once)")
    p.add_argument("--threads", type=int, help="refigure: torch threads for the latency benchmark "
                   "(default: the config's evaluation.latency.threads)")
    p.add_argument("--ref-accuracies", type=float, nargs="+", default=[0.0, 0.8],
                   help="refigure: the hypervolume's reference accuracies, one column each (a student "
                        "below the reference adds nothing)")
    p.add_argument("--completed-by", action="append", default=[], metavar="SEED=ISO-TIME",
                   help="refigure: count only that seed's per_trial trials completed by then (a run "
                        "that went past its budget)")
    p.add_argument("--ref-accuracy", type=float, default=0.0,
                   help="compare: the hypervolume's reference accuracy (as bench_search's)")
    return p.parse_args(argv)


def with_overrides(config: SearchRunConfig, args: argparse.Namespace) -> SearchRunConfig:
    """The config with the command line's smaller budgets, validated again as a whole."""
    raw: dict[str, Any] = config.model_dump(mode="json", exclude_unset=True)
    section = raw.setdefault("auto_distillation", {})
    supernet = section.setdefault("supernet", {})
    if args.supernet_steps is not None:
        supernet.update(train_steps=args.supernet_steps, epochs=None)
    if args.proxy_trials is not None:
        supernet["proxy_trials"] = args.proxy_trials
    if args.regular_steps is not None:
        section.setdefault("regular_distillation", {}).update(train_steps=args.regular_steps, epochs=None)
    if args.flash_steps is not None:
        section.setdefault("flash_distillation", {})["train_steps"] = args.flash_steps
    if args.limit is not None:
        raw.setdefault("data", {})["limit"] = args.limit
    raw["output_dir"] = args.output_dir
    return SearchRunConfig.model_validate(raw)


def spread_architectures(task: DistillationTask, space: SearchSpace, count: int) -> list[Architecture]:
    """`count` valid architectures evenly spaced over the space's valid points by parameter count
    (counted on meta-device models: nothing is initialised)."""
    from autodistill.models.builders import check_architecture, student_config
    from autodistill.preflight import meta_model

    names = space.names()
    valid = []
    for values in itertools.product(*(space.grid()[n] for n in names)):
        architecture = Architecture(dict(zip(names, values)))
        config = student_config(task.student_base, {**task.config.student.fixed, **architecture})
        try:
            check_architecture(config)
        except InvalidArchitecture:
            continue
        params = sum(p.numel() for p in meta_model(task.student_cls, config).parameters())
        valid.append((params, architecture.key(), architecture))
    valid.sort(key=lambda v: v[:2])
    step = (len(valid) - 1) / max(1, count - 1)
    return [valid[round(i * step)][2] for i in range(min(count, len(valid)))]


def read_full_accuracies(path: Path | None) -> dict[str, dict[str, Any]]:
    """Known full-fidelity results by architecture key: a JSON list of {"architecture": {...},
    "accuracy": ..., "seconds": ...} (what a rank run writes; hand-made from docs/benchmarks.md alike)."""
    if path is None or not path.exists():
        return {}
    return {Architecture.from_params(row["architecture"]).key(): row for row in json.loads(path.read_text())}


def write_full_accuracies(path: Path, known: dict[str, dict[str, Any]]) -> None:
    path.write_text(json.dumps(list(known.values()), indent=1) + "\n")


def validation_loss(task: DistillationTask, model: Any) -> float:
    """Mean cross-entropy of `model` on the validation set: a proxy score without accuracy's ties."""
    import torch

    from autodistill.evaluation.batches import labelled_logits

    pairs = list(labelled_logits(model, task.validation_loader, what="the validation loss"))
    return float(torch.nn.functional.cross_entropy(torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])))


def rank(args: argparse.Namespace) -> int:
    from autodistill.supernet import load_or_train_supernet

    config = with_overrides(load_search_config(args.config), args)
    task = DistillationTask(config, output_dir=Path(args.output_dir), quiet=True)
    if not args.no_latency:
        task.teacher_figures(None)  # the teacher measured: the reference latency students are expressed at
    section = config.auto_distillation.supernet
    space = SearchSpace.from_mapping(config.auto_distillation.search.search_space, source="search.search_space")
    started = time.perf_counter()
    elastic = load_or_train_supernet(
        task.teacher, loader=task.train_loader, space=space, section=section,
        root=Path(args.output_dir) / "supernet",
        key=task.supernet_key(space_dimensions(space), section.key_settings()),
        importance_batches=task.importance_batches(section.importance_batches),
        teacher_cache=task.teacher_cache, quiet=False)
    supernet_seconds = time.perf_counter() - started
    print(f"supernet: {supernet_seconds:.1f} s (0 when it was found); teacher {task.teacher_location}")
    variants = list(itertools.product(args.proxy_fine_tune_steps or [section.proxy_fine_tune_steps],
                                      args.proxy_head or [section.proxy_head]))
    proxies = {(steps, head): ProxyTask(task, elastic, fine_tune_steps=steps, proxy_head=head)
               for steps, head in variants}
    finals = FinalTask(task, elastic)  # what the two phases run
    path = args.full_accuracies
    known = read_full_accuracies(path)
    rows, reused = [], 0
    columns = " ".join(f"{f'{head}@{steps}':>9}" for steps, head in variants)
    print(f"{'architecture':<40} {columns} {'full acc':>9} {'cost s':>7} {'full s':>8}")
    for architecture in spread_architectures(task, space, args.architectures):
        w0, c0 = time.perf_counter(), time.process_time()
        if not args.no_latency:  # the same for every variant
            proxies[variants[0]].cost(proxies[variants[0]].build(architecture))
        cost = (time.perf_counter() - w0, time.process_time() - c0)
        scores = {}
        for variant, proxy in proxies.items():
            w0, c0 = time.perf_counter(), time.process_time()
            sliced = proxy.train(proxy.build(architecture)).model
            scores[variant] = (proxy.evaluate(sliced)["accuracy"], time.perf_counter() - w0, time.process_time() - c0,
                             validation_loss(task, sliced))
        full = known.get(architecture.key())
        if full is None:  # trained in full as a final trial is
            t0 = time.perf_counter()
            student = finals.train(finals.build(architecture)).model
            full = {"architecture": architecture.to_dict(), "accuracy": task.validation_accuracy(student)}
            finals.cost(student)
            full["seconds"] = time.perf_counter() - t0
            known[architecture.key()] = full
            if path is not None:
                write_full_accuracies(path, known)
        else:
            reused += 1
        rows.append((architecture, scores, full, cost))
        cells = " ".join(f"{scores[n][0]:>9.4f}" for n in variants)
        print(f"{str(dict(architecture)):<40} {cells} {full['accuracy']:>9.4f} {cost[0]:>7.2f} "
              f"{full['seconds']:>8.1f}", flush=True)
    full_rate = 60 * len(rows) / sum(r[2]["seconds"] for r in rows)
    print(f"\nfull fidelity: {full_rate:.2f} architectures/min trained in full"
          + (f" (the seconds recorded in {path})" if path is not None else ""))
    for steps, head in variants:
        variant = (steps, head)
        tau, p_value = kendalltau([r[1][variant][0] for r in rows], [r[2]["accuracy"] for r in rows])
        loss_tau, _ = kendalltau([-r[1][variant][3] for r in rows], [r[2]["accuracy"] for r in rows])
        wall = sum(r[1][variant][1] + r[3][0] for r in rows)
        cpu = sum(r[1][variant][2] + r[3][1] for r in rows)
        proxy_rate = 60 * len(rows) / wall
        print(f"proxy fine-tune {steps} steps, {head} head: Kendall tau (vs full-fidelity validation accuracy, "
              f"{len(rows)} architectures) {tau:.3f} (p = {p_value:.3g}); {proxy_rate:.1f} architectures/min "
              f"({proxy_rate / full_rate:.0f}x the full rate), {cpu / len(rows):.2f} CPU s and "
              f"{wall / len(rows):.2f} s per architecture (latency benchmark "
              f"{'left out' if args.no_latency else 'included'}); ranked by validation cross-entropy "
              f"instead of accuracy: tau {loss_tau:.3f}")
    print(f"supernet training {supernet_seconds:.0f} s = {supernet_seconds * full_rate / 60:.1f} full trials; "
          f"{reused} full accuracies reused")
    return 0


def _search_yaml(config: SearchRunConfig, path: Path, *, strategy: str, seed: int, max_trials: int) -> Path:
    raw = config.model_dump(mode="json", exclude_unset=True)
    search = raw["auto_distillation"]["search"]
    search.update(strategy=strategy, seed=seed, max_trials=max_trials, search_algorithm="BO")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def cpu_seconds() -> float:
    """CPU time (user + system, every thread) of this process and of its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """CPU time of a running process and its waited-for children (/proc/PID/stat utime..cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def supernet_charge(config: SearchRunConfig, args: argparse.Namespace) -> tuple[float, float, str]:
    """The CPU seconds and wall seconds every seed is charged for the (reused) supernet's training,
    and how they were found: the store's record when it has `cpu_seconds`; else measured by training
    `--calibration-steps` sandwich steps of the same settings into a scratch folder (importance and
    set-up once, then the CPU time per step times the record's steps)."""
    import shutil
    import tempfile

    from autodistill.supernet import load_or_train_supernet

    records = sorted(Path(args.output_dir, "supernet").glob("*/final/supernet.json"), key=lambda p: p.stat().st_mtime)
    if not records:
        raise SystemExit("compare reuses a trained supernet: run `autodistill search ... --strategy supernet` "
                         "or `bench_supernet.py rank` with this --output-dir first")
    record = json.loads(records[-1].read_text())
    if args.charge_cpu_seconds is not None:
        return args.charge_cpu_seconds, float(record["seconds"]), "given by --charge-cpu-seconds"
    if record.get("cpu_seconds"):
        return float(record["cpu_seconds"]), float(record["seconds"]), f"the store's record ({records[-1]})"
    steps = args.calibration_steps
    section = config.auto_distillation.supernet.model_copy(update={"train_steps": steps, "epochs": None})
    task = DistillationTask(config, output_dir=Path(args.output_dir), quiet=True)
    space = SearchSpace.from_mapping(config.auto_distillation.search.search_space, source="search.search_space")
    scratch = Path(tempfile.mkdtemp(prefix="supernet-calibration-", dir=args.output_dir))
    marks: list[float] = []
    try:
        started = cpu_seconds()
        load_or_train_supernet(task.teacher, loader=task.train_loader, space=space, section=section, root=scratch,
                               key=task.supernet_key(space_dimensions(space), section.key_settings()),
                               importance_batches=task.importance_batches(section.importance_batches),
                               teacher_cache=task.teacher_cache, quiet=True,
                               on_step=lambda step: marks.append(cpu_seconds()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    per_step = (marks[-1] - marks[0]) / (len(marks) - 1)
    set_up = marks[0] - started - per_step
    charge = set_up + per_step * record["steps"]
    return charge, float(record["seconds"]), (f"measured: {set_up:.1f} CPU s importance and set-up + "
                                              f"{per_step:.2f} CPU s/step x {record['steps']} steps "
                                              f"({steps} steps trained to measure it)")


def compare(args: argparse.Namespace) -> int:
    """Per seed: the supernet strategy (its CPU time plus the supernet's training, charged in full to
    every seed), then per_trial BO stopped (SIGTERM: finished trials kept) once its CPU time reaches
    that budget. CPU time, not wall time: the machine is shared, and equal wall time would favour
    whichever run got the lighter load. Wall times are printed beside."""
    config = with_overrides(load_search_config(args.config), args)
    root = Path(args.output_dir)
    charge, charge_wall, how = supernet_charge(config, args)
    print(f"supernet training charged to every seed: {charge:.0f} CPU s ({how}); its wall time was "
          f"{charge_wall:.0f} s", flush=True)
    results = []
    for seed in args.seeds:
        storage = f"sqlite:///{root / f'bench_supernet-s{seed}.db'}"
        name = f"supernet-s{seed}"
        ours_yaml = _search_yaml(config, root / f"{name}.yaml", strategy="supernet", seed=seed,
                                 max_trials=config.auto_distillation.search.max_trials)
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        report = run_search(load_search_config(ours_yaml), storage=storage, study_name=name, quiet=True)
        ours_cpu, ours_wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
        budget = ours_cpu + charge
        per_trial = _search_yaml(config, root / f"per_trial-s{seed}.yaml", strategy="per_trial", seed=seed,
                                 max_trials=1000)
        wall0 = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "autodistill.cli", "search", str(per_trial),
                                    "--storage", storage, "--study-name", f"per_trial-s{seed}", "--quiet"])
        spent = 0.0
        while process.poll() is None:
            spent = process_cpu_seconds(process.pid)
            if spent >= budget:  # SIGTERM: a job started in the background ignores SIGINT
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=600)
                break
            time.sleep(1.0)
        theirs_wall = time.perf_counter() - wall0
        teacher = report.study.user_attrs[TEACHER]
        ours = figures(report.study, ref_accuracy=args.ref_accuracy, ref_latency=teacher.get("latency_p50_ms"))
        theirs = figures(optuna.load_study(study_name=f"per_trial-s{seed}", storage=storage),
                         ref_accuracy=args.ref_accuracy, ref_latency=teacher.get("latency_p50_ms"))
        results.append((seed, budget, ours_cpu, ours_wall, spent, theirs_wall, ours, theirs))
        print(f"seed {seed}: budget {budget:.0f} CPU s (supernet search {ours_cpu:.0f} + training {charge:.0f}); "
              f"per_trial used {spent:.0f}; HV paired supernet {_f(ours.hv_paired)} vs per_trial "
              f"{_f(theirs.hv_paired)}; fronts {ours.front} vs {theirs.front}", flush=True)
    print("\n| seed | CPU budget (s) | supernet search CPU / wall (s) | per_trial CPU / wall (s) | "
          "trained: supernet / per_trial | HV supernet | HV per_trial BO |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for seed, budget, ours_cpu, ours_wall, spent, theirs_wall, ours, theirs in results:
        print(f"| {seed} | {budget:.0f} | {ours_cpu:.0f} / {ours_wall:.0f} | {spent:.0f} / {theirs_wall:.0f} | "
              f"{ours.states.get('trained', 0)} / {theirs.states.get('trained', 0)} | {_f(ours.hv_paired)} | "
              f"{_f(theirs.hv_paired)} |")
    return 0


def refigure(args: argparse.Namespace) -> int:
    """The compare's seeds again, every trained student's speed-up measured anew: each saved
    student (the trial's `student_path`) timed paired with the teacher, all in this one process,
    so both arms' speed-ups come from the same machine state. A compare's arms run at different
    times, and under load a 2-thread batch-1 benchmark collapses unevenly (docs/benchmarks.md):
    the speed-ups each trial recorded then compare runs of different loads, not architectures."""
    import datetime

    from transformers import AutoModelForSequenceClassification

    from autodistill.evaluation.latency import LatencySpec, measure_latencies
    from autodistill.study.pareto import non_dominated
    from autodistill.study.record import TrialRecord

    config = load_search_config(args.config)
    latency = config.auto_distillation.evaluation.latency
    spec = LatencySpec(batch_size=latency.batch_size, sequence_length=latency.sequence_length,
                       warmup=latency.warmup, repeats=latency.repeats,
                       threads=args.threads if args.threads is not None else latency.threads, device=latency.device)
    until = {int(k): datetime.datetime.fromisoformat(v) for k, v in (c.split("=", 1) for c in args.completed_by)}
    root = Path(args.output_dir)
    teacher = None
    refs = args.ref_accuracies
    print(f"| seed | arm | trained | HV paired recorded (ref {refs[0]}) | "
          + " | ".join(f"HV paired re-measured (ref {r})" for r in refs)
          + " | front (val acc @ speed-up) |\n| --- | --- | --- | --- | " + "--- | " * len(refs) + "--- |")
    for seed in args.seeds:
        storage = f"sqlite:///{root / f'bench_supernet-s{seed}.db'}"
        for arm in ("supernet", "per_trial"):
            study = optuna.load_study(study_name=f"{arm}-s{seed}", storage=storage)
            if teacher is None:
                teacher = AutoModelForSequenceClassification.from_pretrained(
                    study.user_attrs["teacher_model"]).eval()
            cut = until.get(seed) if arm == "per_trial" else None
            trials = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                      if TrialRecord.from_trial(t).repeat_of is None and (cut is None or t.datetime_complete <= cut)]
            recorded, measured = [], []
            for t in trials:
                record = TrialRecord.from_trial(t)
                student = AutoModelForSequenceClassification.from_pretrained(record.student_path).eval()
                ours, theirs = measure_latencies([student, teacher], spec)
                accuracy = float(t.values[0])
                recorded.append((accuracy, 1.0 / float(t.user_attrs["speedup"])))
                measured.append((accuracy, ours.p50_ms / theirs.p50_ms))
            hv = []
            for points, ref in [(recorded, refs[0])] + [(measured, r) for r in refs]:
                front = [points[i] for i in non_dominated(points, ["maximize", "minimize"])]
                hv.append(hypervolume_2d(front, ref, 1.0) / (1.0 - ref))
            front = sorted((measured[i] for i in non_dominated(measured, ["maximize", "minimize"])), key=lambda p: p[1])
            shown = ", ".join(f"{a:.4f} @ {1 / r:.1f}x" for a, r in front)
            print(f"| {seed} | {arm} | {len(trials)} | " + " | ".join(_f(h) for h in hv) + f" | {shown} |", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return {"rank": rank, "compare": compare, "refigure": refigure}[args.part](args)


if __name__ == "__main__":
    raise SystemExit(main())
