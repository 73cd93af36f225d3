"""Benchmark the deployed runtime (issue 18) on the built-in example (configs/quickstart.yaml).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_deploy.py --architectures 8 --output-dir runs/quickstart

Students: N architectures spread evenly over the valid points of the quickstart space (by
parameter count, scripts/bench_supernet.py's `spread_architectures`), each extracted from the
trained supernet under `<output-dir>/supernet/` (exact: the sub-network's weights are the
supernet's slices; found, or trained once as a supernet search would). Teacher: the quickstart's
fine-tuned MiniLM-L6 under `<output-dir>/teacher/`.

For every architecture, in one interleaved latency measurement (evaluation/latency.py: every
timed round calls each model once, so every ratio below is paired): the teacher and the student
as eager fp32 PyTorch, ONNX Runtime fp32, dynamic int8 and static int8 (calibrated on 8 training
batches drawn with the config's seed), batch 1, the config's sequence length (64) and threads (2).
Speed-ups are ratios of fastest calls (`paired_ratio`), against the teacher in the same runtime
(what a study with `evaluation.deployment` ranks by) and against the eager fp32 teacher (what
shipping in that runtime gains). Accuracies: validation split, the task's own evaluation, each
runtime's graph. Prints a table, the Kendall tau between the eager latency order and each
runtime's, and whether each runtime's front (speed-up over the eager teacher, retention of the
eager teacher's accuracy) dominates the eager front. Asserts nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_supernet import spread_architectures  # noqa: E402

from autodistill.data import make_loader  # noqa: E402
from autodistill.evaluation.deployment import DeploymentTarget, deploy  # noqa: E402
from autodistill.evaluation.latency import measure_latencies, paired_ratio  # noqa: E402
from autodistill.space import SearchSpace  # noqa: E402
from autodistill.study.pareto import non_dominated  # noqa: E402
from autodistill.study.run import load_search_config  # noqa: E402
from autodistill.study.supernet_search import space_dimensions  # noqa: E402
from autodistill.study.task import DistillationTask  # noqa: E402

RUNTIMES = {"eager": DeploymentTarget(), "ort": DeploymentTarget("onnxruntime"),
            "dyn8": DeploymentTarget("onnxruntime", "dynamic_int8"),
            "st8": DeploymentTarget("onnxruntime", "static_int8")}
CALIBRATION_BATCHES = 8


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--config", default="configs/quickstart.yaml")
    p.add_argument("--output-dir", default="runs/quickstart",
                   help="where the fine-tuned teacher and the supernet are found")
    p.add_argument("--architectures", type=int, default=6)
    p.add_argument("--repeats", type=int, default=20, help="timed rounds per architecture")
    p.add_argument("--threads", type=int, help="intra-op threads (default: the config's evaluation.latency.threads)")
    return p.parse_args(argv)


def front_dominates(front: list[tuple[float, float]], other: list[tuple[float, float]]) -> tuple[int, int]:
    """(how many of `other`'s front points some point of `front` weakly dominates, how many there are)."""
    def front_of(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [points[i] for i in non_dominated(points, ["maximize", "maximize"])]

    mine, theirs = front_of(front), front_of(other)
    covered = sum(any(s >= s2 and r >= r2 for s, r in mine) for s2, r2 in theirs)
    return covered, len(theirs)


def main(argv: Sequence[str] | None = None) -> int:
    from autodistill.supernet import load_or_train_supernet
    from autodistill.supernet.store import SupernetStore

    args = parse_args(argv)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    config = load_search_config(args.config)
    out = Path(args.output_dir)
    task = DistillationTask(config, output_dir=out, quiet=True)
    section = config.auto_distillation.supernet
    space = SearchSpace.from_mapping(config.auto_distillation.search.search_space, source="search.search_space")
    key = task.supernet_key(space_dimensions(space), section.key_settings())
    if not SupernetStore(out / "supernet", key).finished():
        print(f"no trained supernet under {out / 'supernet' / key}: run scripts/bench_supernet.py rank first")
        return 1
    elastic = load_or_train_supernet(
        task.teacher, loader=task.train_loader, space=space, section=section, root=out / "supernet",
        key=key, importance_batches=task.importance_batches(section.importance_batches),
        teacher_cache=task.teacher_cache, quiet=True)
    loader = make_loader(task.train_set, batch_size=config.data.batch_size, shuffle=True,
                         seed=config.auto_distillation.seed)
    calibration = [batch for batch, _ in zip(loader, range(CALIBRATION_BATCHES))]
    # one measurement of --repeats rounds (no re-takes): 8 models a round, the eager teacher the longest
    spec = replace(task.latency_spec, repeats=args.repeats, max_attempts=1,
                   threads=args.threads or task.latency_spec.threads)
    scratch = Path(tempfile.mkdtemp(prefix="bench-deploy-"))

    def deployed_all(model, name):  # type: ignore[no-untyped-def]
        return {runtime: deploy(model, target, scratch / name / runtime, threads=spec.threads,
                                calibration=calibration) for runtime, target in RUNTIMES.items()}

    def score(model):  # type: ignore[no-untyped-def]
        return task.kind.evaluate(model, task.validation_loader, device="cpu")["accuracy"]

    started = time.perf_counter()
    teachers = deployed_all(task.teacher, "teacher")
    teacher_acc = {runtime: score(model) for runtime, model in teachers.items()}
    print(f"teacher {task.teacher_location}: validation accuracy "
          + ", ".join(f"{r} {a:.4f}" for r, a in teacher_acc.items())
          + f"; spec batch {spec.batch_size}, seq {spec.sequence_length}, threads {spec.threads}")
    names = list(RUNTIMES)
    header = (f"{'architecture':<34} {'params':>9} | " + " ".join(f"{r + ' ms':>8}" for r in names)
              + " | " + " ".join(f"{r + ' x':>7}" for r in names) + " | "
              + " ".join(f"{r + ' xE':>8}" for r in names[1:]) + " | " + " ".join(f"{r + ' acc':>8}" for r in names))
    print(header)
    rows = []
    for architecture in spread_architectures(task, space, args.architectures):
        student = elastic.extract(architecture).eval()
        students = deployed_all(student, architecture.key()[:40].replace("/", "_"))
        timed = measure_latencies([*teachers.values(), *students.values()], spec)
        teacher_lat, student_lat = dict(zip(names, timed[:4])), dict(zip(names, timed[4:]))
        same = {r: 1 / paired_ratio(student_lat[r], teacher_lat[r]) for r in names}       # vs its own teacher
        vs_eager = {r: 1 / paired_ratio(student_lat[r], teacher_lat["eager"]) for r in names}  # vs eager teacher
        acc = {r: score(students[r]) for r in names}
        params = sum(p.numel() for p in student.parameters())
        rows.append((architecture, params, student_lat, same, vs_eager, acc))
        print(f"{str(dict(architecture)):<34} {params:>9,} | "
              + " ".join(f"{student_lat[r].min_ms:>8.2f}" for r in names) + " | "
              + " ".join(f"{same[r]:>7.2f}" for r in names) + " | "
              + " ".join(f"{vs_eager[r]:>8.2f}" for r in names[1:]) + " | "
              + " ".join(f"{acc[r]:>8.4f}" for r in names), flush=True)
        shutil.rmtree(scratch / architecture.key()[:40].replace("/", "_"), ignore_errors=True)
    print(f"\n{len(rows)} architectures in {time.perf_counter() - started:.0f} s; teacher fastest calls (ms): "
          + ", ".join(f"{r} {teacher_lat[r].min_ms:.2f}" for r in RUNTIMES))
    eager_order = [r[2]["eager"].min_ms for r in rows]
    eager_front = [(r[4]["eager"], r[5]["eager"] / teacher_acc["eager"]) for r in rows]
    for runtime in list(RUNTIMES)[1:]:
        tau, p_value = kendalltau(eager_order, [r[2][runtime].min_ms for r in rows])
        tau_ort, _ = kendalltau([r[2]["ort"].min_ms for r in rows], [r[2][runtime].min_ms for r in rows])
        front = [(r[4][runtime], r[5][runtime] / teacher_acc["eager"]) for r in rows]
        covered, total = front_dominates(front, eager_front)
        back, total_back = front_dominates(eager_front, front)
        drop = [r[5]["eager"] - r[5][runtime] for r in rows]
        print(f"{runtime}: Kendall tau of the latency order vs eager {tau:.3f} (p = {p_value:.3g}), "
              f"vs ort fp32 {tau_ort:.3f}; "
              f"its front covers {covered}/{total} eager front points, the eager front covers {back}/{total_back} "
              f"of its; accuracy change vs eager mean {-sum(drop) / len(drop):+.4f}, worst {-max(drop):+.4f}")
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
