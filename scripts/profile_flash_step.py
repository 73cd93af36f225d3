"""Profile the Distiller's flash steps at full size: torch.profiler's aten ops by self CPU time.

    HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/profile_flash_step.py
    cd <worktree of an older commit> && PYTHONPATH=. python /work/main/scripts/profile_flash_step.py \\
        --bench scripts/bench_distill.py                   # the same table at that commit

It reuses scripts/bench_distill.py's models and batches (MiniLM-L6 teacher, 2-layer hidden-128
student, batch 32 x 64) and its `ours_flash`, trains flash block 1 for a few warm-up steps, then
profiles `--steps` more with one thread. Op counts and the self-CPU split are what a step does;
they do not depend on how busy the machine is, unlike a wall-clock ratio. Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bench", default=str(Path(__file__).with_name("bench_distill.py")),
                   help="the bench_distill.py whose models, batches and ours_flash are profiled")
    p.add_argument("--block", type=int, default=1, help="the student block trained")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--rows", type=int, default=22)
    args = p.parse_args(argv)
    spec = importlib.util.spec_from_file_location("bench_distill", args.bench)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench_args = bench.parse_args(["--skip-cache", "--context-steps", "0", "--threads", "1"])
    torch.set_num_threads(1)
    teacher, _ = bench.load_teacher(bench_args)
    student0 = bench.build_student(bench_args, teacher)
    batches = bench.make_batches(bench_args, teacher.config.vocab_size)
    block = [bench.flash_pairs(bench_args, teacher)[args.block]]
    bench.ours_flash(bench_args, teacher, student0, batches, 2, 2, block)  # warm
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        bench.ours_flash(bench_args, teacher, student0, batches, 0, args.steps, block)
    print(f"flash block {args.block}, {args.steps} steps (Distiller set-up included), 1 thread, "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}, load {os.getloadavg()[0]:.2f}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
