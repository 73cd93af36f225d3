"""A vision example through the library API: a plain-PyTorch CNN teacher distilled into searched
CNN students (channels, depth) on scikit-learn's bundled digits (1,797 8x8 images, 10 classes).

    .venv/bin/python scripts/example_vision_digits.py                  # a few minutes on 2 CPU cores
    .venv/bin/python scripts/example_vision_digits.py --trials 4 --epochs 2 --out runs/digits

No transformers model anywhere: the teacher and the students are `nn.Module`s of this file, the
search is `AutoDistillation` with the seed's three functions (model_builder, train_func,
eval_func) and a cost function, and the Distiller runs flash distillation block by block
(student block i learns the feature map of an evenly spread teacher block through a 1x1
convolution matcher, since the channel counts differ) and then regular distillation (logit KD
plus cross-entropy). Latency is the paired benchmark of `measure_latencies` (student and
teacher timed call for call, batch 1). The Pareto front (accuracy, latency) is printed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autodistill import AutoDistillation, DataAdaptor, Distiller
from autodistill.config.schema import SearchSection
from autodistill.config.stages import teacher_layer_for
from autodistill.evaluation import accuracy
from autodistill.evaluation.latency import LatencySpec, count_parameters, measure_latencies
from autodistill.study.pareto import pareto_front

SPACE = {"channels": [8, 16, 32], "depth": [1, 2, 3]}
TEACHER = {"channels": 64, "depth": 4}


class ConvNet(nn.Module):
    """`depth` blocks of 3x3 convolution + batch norm + ReLU at `channels`, then a linear head."""

    def __init__(self, channels: int, depth: int, classes: int = 10) -> None:
        super().__init__()
        widths = [1] + [channels] * depth
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 3, padding=1), nn.BatchNorm2d(widths[i + 1]),
                          nn.ReLU()) for i in range(depth))
        self.head = nn.Linear(channels, classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3)))


def digits(seed: int = 0) -> dict[str, list[dict[str, torch.Tensor]]]:
    """The digits as 70/15/15 train/validation/test batches of 64 ({'pixels', 'labels'})."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = [0, int(0.7 * len(order)), int(0.85 * len(order)), len(order)]
    return {name: [{"pixels": images[order[a:b]][i:i + 64], "labels": labels[order[a:b]][i:i + 64]}
                   for i in range(0, b - a, 64)]
            for name, a, b in zip(("train", "validation", "test"), cut, cut[1:])}


def plan(student_depth: int, *, epochs: float, flash_steps: int) -> dict[str, Any]:
    """Flash (block i <- teacher block t, feature maps, MSE through a 1x1 conv) then regular KD."""
    mappings = [[[f"blocks.{i}", f"blocks.{teacher_layer_for(i, student_depth, TEACHER['depth'])}"]]
                for i in range(student_depth)]
    return {
        "seed": 0, "progress": False, "optimizer": {"name": "AdamW", "learning_rate": 3e-3},
        "flash_distillation": {"block_names": [f"blocks.{i}" for i in range(student_depth)],
                               "layer_mappings_for_knowledge_transfer": mappings,
                               "loss_types": [["MSE"]] * student_depth,
                               "train_steps": [flash_steps] * student_depth},
        "regular_distillation": {"epochs": epochs, "temperature": 2.0, "loss_types": ["KL", "CE"],
                                 "loss_weights": [0.5, 0.5]},
    }


def train_teacher(batches: Sequence[Mapping[str, torch.Tensor]], epochs: int) -> ConvNet:
    torch.manual_seed(0)
    teacher = ConvNet(**TEACHER)
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in batches:
            loss = nn.functional.cross_entropy(teacher(batch["pixels"]), batch["labels"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return teacher.eval()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--epochs", type=float, default=6, help="regular-distillation epochs per student")
    p.add_argument("--flash-steps", type=int, default=20)
    p.add_argument("--teacher-epochs", type=int, default=15)
    p.add_argument("--latency-repeats", type=int, default=30)
    p.add_argument("--out", default="runs/digits")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))

    data = digits()
    teacher = train_teacher(data["train"], args.teacher_epochs)
    spec = LatencySpec(batch_size=1, warmup=5, repeats=args.latency_repeats, threads=1, device="cpu")
    image = {"pixels": torch.zeros(1, 1, 8, 8)}  # batch 1: one digit
    teacher_accuracy = accuracy(teacher, data["validation"])

    def build(architecture: Mapping[str, Any]) -> nn.Module:
        torch.manual_seed(0)
        return ConvNet(int(architecture["channels"]), int(architecture["depth"]))

    def train(student: ConvNet) -> ConvNet:
        distiller = Distiller(teacher, student, plan(len(student.blocks), epochs=args.epochs,
                                                     flash_steps=args.flash_steps), quiet=args.quiet,
                              adaptor=DataAdaptor(pass_labels_to_student=False))  # forward(pixels) only
        distiller.fit(data["train"])
        return student

    def cost(student: nn.Module) -> dict[str, float]:
        s, t = measure_latencies([student, teacher], spec, example_inputs=image)
        return {"latency_p50_ms": s.p50_ms, "speedup": t.p50_ms / s.p50_ms, "params": count_parameters(student)}

    def evaluate(student: nn.Module) -> dict[str, float]:
        return {"accuracy": accuracy(student, data["validation"]), "test_accuracy": accuracy(student, data["test"])}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    section = SearchSection(search_space=SPACE, search_algorithm="TPE", metrics=["accuracy", "latency"],
                            max_trials=args.trials, seed=0)
    agent = AutoDistillation(build, section, train_func=train, eval_func=evaluate, cost_func=cost,
                             storage_url=f"sqlite:///{out / 'study.db'}", study_name="digits", output_dir=out,
                             save_func=lambda model, folder: torch.save(model.state_dict(), folder / "student.pt"),
                             progress=not args.quiet)
    front = agent.search_loop()
    print(f"teacher {TEACHER}: validation accuracy {teacher_accuracy:.4f}, {count_parameters(teacher):,} parameters")
    for trial in sorted(pareto_front(agent.study), key=lambda t: t.values[1]):  # repeats left out
        a = trial.user_attrs
        print(f"trial {trial.number}: {trial.params} accuracy {trial.values[0]:.4f} (test "
              f"{a.get('test_accuracy', math.nan):.4f}), {a.get('params', 0):,} parameters, "
              f"speed-up {a.get('speedup', math.nan):.1f}x")
    return 0 if front else 1


if __name__ == "__main__":
    raise SystemExit(main())
