"""Benchmark `student.init_from_teacher` (issue 5): accuracy after the same number of steps,
with and without copying the teacher's embeddings and evenly spaced layers into the student.

    .venv/bin/python scripts/bench_init.py                      # quickstart teacher and data
    .venv/bin/python scripts/bench_init.py --epochs 1 6 --architectures 384x1x6x1024 128x2x2x512

Uses `configs/quickstart.yaml` as it is (teacher fine-tuned once under its output_dir and
reused, the teacher-output cache, flash then regular distillation) and changes only two
things per run: `init_from_teacher` (off, on) and the regular stage's `epochs`. Both runs of a
pair start from the same seed, so the fresh student is the same one; with init on, the
teacher's tensors then replace the fresh ones (sliced where the student is narrower).
An architecture is HIDDENxLAYERSxHEADSxINTERMEDIATE. Prints validation and test accuracy per
(architecture, epochs, init) and the gain; asserts nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import time
from collections.abc import Sequence

import torch

from autodistill.study.run import load_search_config
from autodistill.study.task import DistillationTask


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
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    config = load_search_config(args.config)
    task = DistillationTask(config, quiet=True)
    teacher = task.evaluate(task.teacher)
    print(f"teacher {task.teacher_location}: validation {teacher['accuracy']:.4f}, "
          f"test {teacher.get('test_accuracy', float('nan')):.4f}; torch threads {torch.get_num_threads()}")
    print(f"{'architecture':<16} {'epochs':>6} {'init':<5} {'val acc':>8} {'test acc':>8} {'seconds':>8}")
    rows = []
    for text in args.architectures:
        architecture = parse_architecture(text)
        for epochs in args.epochs:
            results = {}
            for init in (False, True):
                section = config.auto_distillation
                regular = section.regular_distillation.model_copy(update={"epochs": epochs, "train_steps": None})
                task.config = config.model_copy(update={
                    "student": config.student.model_copy(update={"init_from_teacher": init}),
                    "auto_distillation": section.model_copy(update={"regular_distillation": regular})})
                torch.manual_seed(args.seed)
                started = time.perf_counter()
                student = task.train(task.build(architecture))
                result = task.evaluate(student)
                seconds = time.perf_counter() - started
                results[init] = result
                print(f"{text:<16} {epochs:>6g} {'on' if init else 'off':<5} {result['accuracy']:>8.4f} "
                      f"{result.get('test_accuracy', float('nan')):>8.4f} {seconds:>8.1f}", flush=True)
            rows.append((text, epochs, results))
    print("\n| architecture | regular epochs | test acc, init off | test acc, init on | gain |")
    print("| --- | --- | --- | --- | --- |")
    for text, epochs, results in rows:
        off, on = results[False].get("test_accuracy"), results[True].get("test_accuracy")
        print(f"| {text} | {epochs:g} | {off:.4f} | {on:.4f} | {on - off:+.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
