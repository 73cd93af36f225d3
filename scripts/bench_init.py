"""Benchmark `student.init_from_teacher` (issue 5) and `student.importance_order` (issue 13):
accuracy after the same number of steps, from fresh weights, from the teacher's first heads and
neurons, and from its most important ones.

    .venv/bin/python scripts/bench_init.py                      # quickstart teacher and data
    .venv/bin/python scripts/bench_init.py --epochs 1 6 --architectures 384x1x6x1024 128x2x2x512
    .venv/bin/python scripts/bench_init.py --init first ordered  # ordered vs unordered slicing

Uses `configs/quickstart.yaml` as it is (teacher fine-tuned once under its output_dir and
reused, the teacher-output cache, flash then regular distillation) and changes only two
things per run: the initialisation and the regular stage's `epochs`. `--init` picks from
`off` (fresh weights), `first` (init_from_teacher: the teacher's first heads and neurons) and
`ordered` (the same, from a copy of the teacher reordered by importance on
`supernet.importance_batches` training batches; the distillation teacher is unchanged). All runs
of a group start from the same seed, so the fresh student is the same one. An architecture is
HIDDENxLAYERSxHEADSxINTERMEDIATE. Prints validation and test accuracy per (architecture, epochs,
init) and the gains over the first mode; asserts nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import copy
import time
from collections.abc import Sequence

import torch

from autodistill.study.run import load_search_config
from autodistill.study.task import DistillationTask
from autodistill.supernet import reorder_by_importance

MODES = ("off", "first", "ordered")


def parse_architecture(text: str) -> dict[str, int]:
    hidden, layers, heads, intermediate = (int(x) for x in text.lower().split("x"))
    return {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": intermediate}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/quickstart.yaml")
    p.add_argument("--architectures", nargs="+", default=["384x1x6x1024", "256x2x4x1024", "128x2x2x512"])
    p.add_argument("--epochs", type=float, nargs="+", default=[1, 6],
                   help="regular-distillation epochs (flash stays as configured)")
    p.add_argument("--init", nargs="+", choices=MODES, default=list(MODES),
                   help="initialisations to compare (the first is the baseline of the gains)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    config = load_search_config(args.config)
    task = DistillationTask(config, quiet=True)
    teacher = task.evaluate(task.teacher)
    print(f"teacher {task.teacher_location}: validation {teacher['accuracy']:.4f}, "
          f"test {teacher.get('test_accuracy', float('nan')):.4f}; torch threads {torch.get_num_threads()}")
    init_teachers = {"off": task.teacher, "first": task.teacher}
    if "ordered" in args.init:
        init_teachers["ordered"] = copy.deepcopy(task.teacher)
        batches = task.importance_batches(config.auto_distillation.supernet.importance_batches)
        report = reorder_by_importance(init_teachers["ordered"], batches)
        print(f"importance order on {report.batches} batches; layer 0 heads {list(report.head_order[0])}")
    print(f"{'architecture':<16} {'epochs':>6} {'init':<8} {'val acc':>8} {'test acc':>8} {'seconds':>8}")
    rows = []
    for text in args.architectures:
        architecture = parse_architecture(text)
        for epochs in args.epochs:
            results = {}
            for mode in args.init:
                section = config.auto_distillation
                regular = section.regular_distillation.model_copy(update={"epochs": epochs, "train_steps": None})
                task.config = config.model_copy(update={
                    "student": config.student.model_copy(update={"init_from_teacher": mode != "off"}),
                    "auto_distillation": section.model_copy(update={"regular_distillation": regular})})
                task.init_teacher = init_teachers[mode]
                torch.manual_seed(args.seed)
                started = time.perf_counter()
                student = task.train(task.build(architecture)).model
                result = task.evaluate(student)
                seconds = time.perf_counter() - started
                results[mode] = result
                print(f"{text:<16} {epochs:>6g} {mode:<8} {result['accuracy']:>8.4f} "
                      f"{result.get('test_accuracy', float('nan')):>8.4f} {seconds:>8.1f}", flush=True)
            rows.append((text, epochs, results))
    base, others = args.init[0], args.init[1:]
    print("\n| architecture | regular epochs | " + " | ".join(f"test acc, {m}" for m in args.init)
          + "".join(f" | {m} - {base}" for m in others) + " |")
    print("| --- | --- |" + " --- |" * (len(args.init) + len(others)))
    for text, epochs, results in rows:
        test = {m: results[m].get("test_accuracy", float("nan")) for m in args.init}
        print(f"| {text} | {epochs:g} | " + " | ".join(f"{test[m]:.4f}" for m in args.init)
              + "".join(f" | {test[m] - test[base]:+.4f}" for m in others) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
