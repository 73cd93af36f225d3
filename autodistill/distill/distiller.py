"""`Distiller`: runs a distillation plan (flash blocks, then regular) on any teacher/student pair.

    distiller = Distiller(teacher, student, "configs/distill.yaml")
    result = distiller.fit(train_loader)
    distiller.save("out/")          # the student and its feature matchers

Each stage builds its own optimiser over exactly the parameters it trains (the
block's prefix, plus its matchers), so every block is trained during its own
steps and no other's. Teachers run in eval mode without gradients.

This module is the per-step loop. What happens around the steps is event handlers
(distill/callbacks.py events, as transformers' TrainerCallback), fired in this order before the
user's callbacks: the progress bars (progress.py), evaluation during training
(evaluation_handler.py), checkpoints (checkpoint_handler.py); then the user's callbacks and the
TensorBoard logger (tb_logging.py). They share the run's records and data position (fit_run.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autodistill.capture import FeatureCapture
from autodistill.config.plan import DistillationPlan, Stage
from autodistill.data.adaptor import DataAdaptor, to_device
from autodistill.distill.callbacks import (
    CallbackList,
    DistillationCallback,
    DistillationControl,
    DistillationState,
)
from autodistill.distill.checkpoint import (
    Checkpoint,
    Checkpointer,
    Position,
    fingerprint,
    read_checkpoint,
    refuse_overwrite,
    restore_random_states,
)
from autodistill.distill.checkpoint_handler import CheckpointHandler
from autodistill.distill.evaluation_handler import EvalFn, EvaluationHandler, eval_sets
from autodistill.distill.fit_run import FitRun
from autodistill.distill.freezing import train_only
from autodistill.distill.optimization import build_optimizer, build_schedule
from autodistill.distill.probe import PlanProbe, paths_per_teacher
from autodistill.distill.progress import ProgressBars
from autodistill.distill.records import Evaluation, FitResult, StageRecord
from autodistill.distill.teacher_cache import Feature, TeacherCache, cache_dtypes, features_for
from autodistill.distill.train_batches import TrainBatches
from autodistill.errors import ConfigError, MappingError, NonFiniteLossError
from autodistill.losses.matchers import FeatureMatchers
from autodistill.losses.scored_positions import output_layer_at, reads_output_layer, scored_positions
from autodistill.losses.stage_loss import ResolvedMapping, StageLoss
from autodistill.models.saving import save_model
from autodistill.modes import model_modes
from autodistill.precision import autocast, gradient_scaler, precision_refusal

__all__ = ["Distiller", "EvalFn", "Evaluation", "FitResult", "StageRecord", "resolve_device", "seed_everything"]


@dataclass
class _StageRun:
    """A stage's set-up: built once before its first step, used by every step."""

    stage: Stage
    loss_fn: StageLoss
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    schedule: Any
    student_capture: FeatureCapture
    teacher_captures: list[FeatureCapture | None]
    cached: list[Feature] | None
    scaler: torch.amp.GradScaler | None = None
    scored_only: tuple[nn.Module, ...] = ()  # models whose vocabulary projection runs at scored positions only
    last_learning_rate: float = 0.0

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the stage's training state."""
        return {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        if self.scaler is not None and saved.get("scaler") is not None:
            self.scaler.load_state_dict(saved["scaler"])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _as_plan(config: Any) -> DistillationPlan:
    from autodistill.config.loader import load_distillation_plan

    if isinstance(config, DistillationPlan):
        return config
    return load_distillation_plan(config)


def _teachers(teacher: nn.Module | Sequence[nn.Module] | Mapping[str, nn.Module]
              ) -> tuple[list[str], list[nn.Module]]:
    if isinstance(teacher, nn.Module):
        return ["teacher"], [teacher]
    if isinstance(teacher, Mapping):
        return list(teacher.keys()), list(teacher.values())
    teachers = list(teacher)
    return [f"teacher{i}" for i in range(len(teachers))], teachers


class Distiller:
    """Distils `teacher` (one model, a list, or a name -> model mapping) into `student`."""

    def __init__(self, teacher: nn.Module | Sequence[nn.Module] | Mapping[str, nn.Module],
                 student: nn.Module, config: Any, *, adaptor: DataAdaptor | None = None,
                 callbacks: Sequence[DistillationCallback] = (), matchers: FeatureMatchers | None = None,
                 teacher_cache: TeacherCache | None = None, quiet: bool = False) -> None:
        self.plan = _as_plan(config)
        self.teacher_names, self.teachers = _teachers(teacher)
        if not self.teachers:
            raise ConfigError("give at least one teacher")
        weights = self.plan.teacher_weights or tuple(1.0 / len(self.teachers) for _ in self.teachers)
        if len(weights) != len(self.teachers):
            raise ConfigError(
                f"teacher_weights has {len(weights)} entries but there are {len(self.teachers)} "
                "teachers; give one weight per teacher"
            )
        self.teacher_weights = tuple(weights)
        self.student = student
        self.adaptor = adaptor or DataAdaptor()
        self.callbacks = CallbackList(callbacks)
        self.matchers = matchers or FeatureMatchers()
        self.device = resolve_device(self.plan.device)
        self.quiet = quiet or not self.plan.progress
        if teacher_cache is not None and len(self.teachers) != 1:
            raise ConfigError("a teacher cache serves one teacher; run several teachers live")
        self.teacher_cache = teacher_cache
        refusal = precision_refusal(self.plan.precision, self.device, force=self.plan.precision_force)
        if refusal is not None:
            raise ConfigError(f"precision: {refusal}")
        self.resolved: list[list[ResolvedMapping]] | None = None

    def prepare(self, batch: Any) -> list[list[ResolvedMapping]]:
        """Validate the plan on one batch and create the matchers; done once, before training."""
        seed_everything(self.plan.seed)
        self.student.to(self.device)
        self.matchers.to(self.device)
        for t in self.teachers:
            t.to(self.device).eval()
        probe = PlanProbe(self.plan, self.student, self.teachers, self.teacher_names,
                          self.teacher_weights, self.adaptor, self.matchers)
        self.resolved = probe.run(to_device(batch, self.device))
        return self.resolved

    def fit(self, train_loader: Iterable[Any], eval_loaders: Mapping[str, Iterable[Any]] | Iterable[Any] | None = None,
            *, eval_fn: EvalFn | None = None, checkpoint_dir: str | Path | None = None,
            resume_from: str | Path | None = None, log_dir: str | Path | None = None) -> FitResult:
        """Train every stage in order.

        `eval_loaders` ({name: loader}, or one loader, named "validation"): evaluated with
        `eval_fn(student, loader)` (a metric mapping or one number; default: accuracy) every
        `eval_every_steps` and at each stage end, into `FitResult.evaluations`, the log and the
        callbacks' `on_evaluate`; evaluation leaves training's random stream as it was. With
        `checkpoint_dir`, checkpoints are written there (every `checkpoint_every_steps` and at
        each stage end); with `resume_from`, the run continues exactly where its newest checkpoint
        stood (and keeps checkpointing there unless `checkpoint_dir` is given): exact resumption
        needs the loader's order to repeat (a fixed list, or make_loader's own generator).
        `log_dir`: where `logging.tensorboard: true` writes its event files (default: runs/).
        """
        checkpoints, resumed = self._checkpointing(checkpoint_dir, resume_from)
        loggers = self._loggers(log_dir)
        resolved = self.prepare(next(TrainBatches(train_loader)))
        if self.teacher_cache is not None:
            self.teacher_cache.ensure(features_for(self.plan.stages),
                                      dtypes=cache_dtypes(self.plan.precision, self.plan.stages))
        batches = TrainBatches(train_loader)  # restart: the probe batch is also the first step's
        seed_everything(self.plan.seed)
        state, control = DistillationState(), DistillationControl()
        position = Position()
        if resumed is not None:
            position = resumed.position
            run = FitRun(self._restore(resumed, batches, state), batches)
        else:
            run = FitRun(FitResult(), batches)
        run.callbacks = self._handlers(run, eval_loaders, eval_fn, checkpoints, loggers)
        self.student.train()
        run.callbacks.fire("on_fit_begin", state, control)
        for index, (stage, mappings) in enumerate(zip(self.plan.stages, resolved)):
            if index < position.stage_index:
                continue
            state.stage_index, state.stage = index, stage
            state.total_steps, state.step = stage.steps_for(batches.per_epoch), 0
            run.callbacks.fire("on_stage_begin", state, control)
            at = resumed if resumed is not None and index == position.stage_index and position.step else None
            self._run_stage(stage, mappings, run, state, control, at)
            if control.should_stop:
                run.result.stopped_early = True
            run.callbacks.fire("on_stage_end", state, control)  # evaluation and checkpoint, unless stopped
            if control.should_stop:
                break
        run.callbacks.fire("on_fit_end", state, control)
        return run.result

    def _handlers(self, run: FitRun, eval_loaders: Mapping[str, Iterable[Any]] | Iterable[Any] | None,
                  eval_fn: EvalFn | None, checkpoints: Checkpointer | None,
                  loggers: Sequence[DistillationCallback]) -> CallbackList:
        """The run's event handlers in the order they are fired: progress (none when quiet),
        evaluation, checkpoints, then the user's callbacks and the loggers."""
        handlers: list[DistillationCallback] = [] if self.quiet else [ProgressBars()]
        sets = eval_sets(eval_loaders)
        if sets:
            handlers.append(EvaluationHandler(run, self.student, sets, eval_fn or self._accuracy,
                                              every=self.plan.eval_every_steps, device=self.device))
        if checkpoints is not None:
            handlers.append(CheckpointHandler(run, checkpoints, student=self.student, matchers=self.matchers))
        return CallbackList([*handlers, *self.callbacks.callbacks, *loggers])

    def _checkpointing(self, checkpoint_dir: str | Path | None, resume_from: str | Path | None
                       ) -> tuple[Checkpointer | None, Checkpoint | None]:
        """Where this run writes checkpoints, and the checkpoint it resumes from: both checked
        before any work (another plan's checkpoint refused, none overwritten without resuming)."""
        mark = fingerprint(self.plan, self.student)
        resumed = None if resume_from is None else read_checkpoint(resume_from, mark, fix="start without resuming")
        folder = checkpoint_dir if checkpoint_dir is not None else resume_from
        if folder is None:
            return None, resumed
        if resume_from is None or Path(folder) != Path(resume_from):
            refuse_overwrite(folder, fix="resume from it (resume_from, or `autodistill distill --resume`), "
                                         "or give a new folder")
        return Checkpointer(folder, mark, self.plan.checkpoint_every_steps), resumed

    def _loggers(self, log_dir: str | Path | None) -> list[DistillationCallback]:
        """The TensorBoard logger, where the plan asks for one (made before training: a missing
        package stops the run at once)."""
        if not self.plan.tensorboard:
            return []
        from autodistill.distill.tb_logging import TensorBoardLogger

        folder = self.plan.tensorboard if isinstance(self.plan.tensorboard, str) else (log_dir or "runs")
        return [TensorBoardLogger(folder, every=self.plan.log_every_steps)]

    def _accuracy(self, student: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        from autodistill.evaluation.accuracy import accuracy

        return {"accuracy": accuracy(student, loader, adaptor=self.adaptor, device=self.device,
                                     precision=self.plan.precision)}

    def _restore(self, checkpoint: Checkpoint, batches: TrainBatches, state: DistillationState) -> FitResult:
        """The student, matchers, data position and random states of `checkpoint`; its records."""
        saved = checkpoint.state()
        self.student.load_state_dict(saved["student"])
        checkpoint.load_matchers(self.matchers)
        state.global_step = checkpoint.position.global_step
        batches.skip(checkpoint.position.batches)
        restore_random_states(saved["random"])
        at_stage_end = checkpoint.position.step == 0
        return FitResult.from_history(checkpoint.history,
                                      stages_begun=checkpoint.position.stage_index if at_stage_end else None)

    def _run_stage(self, stage: Stage, mappings: list[ResolvedMapping], run: FitRun, state: DistillationState,
                   control: DistillationControl, resumed: Checkpoint | None) -> StageRecord:
        """Set the stage up once (its parameters, optimiser, schedule, captures), then step, firing
        `on_step_end` after each step; a stage `resumed` mid-way takes its optimiser and schedule
        states and its record from the checkpoint."""
        result, batches = run.result, run.batches
        if resumed is not None:
            record, first = result.stages[-1], resumed.position.step
        else:
            record, first = StageRecord(stage.name, state.total_steps), 0
            result.stages.append(record)
        matcher_keys = dict.fromkeys(r.matcher_key for r in mappings if r.matcher_key)
        log_every = self.plan.log_every_steps if self.plan.tensorboard else 0
        with train_only(self.student, stage.trainable) as named:
            named = named + [(f"matchers.{k}.{n}", p) for k in matcher_keys
                             for n, p in self.matchers[k].named_parameters()]
            if not named:
                raise MappingError(f"stage '{stage.name}' has no trainable parameters")
            setup = self._set_up(stage, mappings, named, state.total_steps)
            if resumed is not None:
                setup.load_state_dict(resumed.state())
            started, seconds = time.perf_counter(), record.seconds
            run.stage = setup
            run.captures = [c for c in (setup.student_capture, *setup.teacher_captures) if c is not None]
            with ExitStack() as active, model_modes(eval=self.teachers, train=[self.student]):
                for capture in run.captures:
                    active.enter_context(capture)
                for step in range(first, state.total_steps):
                    measure = bool(log_every) and (state.global_step + 1) % log_every == 0
                    total, terms, norm = self._step(setup, batches, step, measure_norm=measure)
                    record.losses.append(total)
                    elapsed = time.perf_counter() - started
                    record.seconds = seconds + elapsed
                    state.step, state.global_step, state.loss = step + 1, state.global_step + 1, total
                    state.terms, state.learning_rate, state.grad_norm = terms, setup.last_learning_rate, norm
                    state.epoch = batches.epoch
                    state.steps_per_second = (step + 1 - first) / elapsed if elapsed else 0.0
                    run.callbacks.fire("on_step_end", state, control)
                    if control.should_stop:
                        break
            record.seconds = seconds + time.perf_counter() - started
            run.stage, run.captures = None, []
        return record

    def _set_up(self, stage: Stage, mappings: list[ResolvedMapping], named: list[tuple[str, nn.Parameter]],
                total_steps: int) -> _StageRun:
        """What a stage builds once, before its first step."""
        truncate = self.plan.truncate_forward and not stage.needs_model_output
        teacher_paths = paths_per_teacher(((r.teacher, r.mapping.teacher) for r in mappings), len(self.teachers))
        live = self.teacher_cache is None
        active = [live and (bool(p) or (stage.logit_kd is not None and stage.needs_teacher)) for p in teacher_paths]
        optimizer = build_optimizer(named, stage.optimizer, self.device)
        return _StageRun(
            stage=stage,
            loss_fn=StageLoss(stage, mappings, self.matchers, self.teacher_weights),
            params=[p for _, p in named],
            optimizer=optimizer,
            schedule=build_schedule(optimizer, stage.schedule, total_steps),
            student_capture=FeatureCapture(self.student, [r.mapping.student for r in mappings],
                                           role="student", stop_when_complete=truncate),
            teacher_captures=[
                FeatureCapture(t, paths, role=f"teacher '{n}'", stop_when_complete=truncate) if on else None
                for t, paths, n, on in zip(self.teachers, teacher_paths, self.teacher_names, active)],
            cached=features_for([stage]) if not live and stage.needs_teacher else None,
            scaler=gradient_scaler(self.plan.precision, self.device),
            scored_only=self._scored_only(stage, mappings, teacher_paths, active))

    def _scored_only(self, stage: Stage, mappings: list[ResolvedMapping], teacher_paths: Sequence[Sequence[str]],
                     active: Sequence[bool]) -> tuple[nn.Module, ...]:
        """The models of a logit-KD stage that may project onto the vocabulary only at the batch's
        scored positions (losses/scored_positions.py): no mapping reads their output layer, and the
        student computes no loss of its own (which would read every token's logits)."""
        if stage.logit_kd is None:
            return ()
        student = [] if stage.add_origin_loss or reads_output_layer(
            self.student, [r.mapping.student for r in mappings]) else [self.student]
        return tuple(student + [t for t, paths, on in zip(self.teachers, teacher_paths, active)
                                if on and not reads_output_layer(t, paths)])

    def _step(self, run: _StageRun, batches: TrainBatches, step: int, *, measure_norm: bool = False
              ) -> tuple[float, dict[str, float], float | None]:
        """One optimiser step (over `gradient_accumulation_steps` batches): its loss, loss terms and
        gradient norm (where clipping measures it, or `measure_norm` asks for it)."""
        stage, accumulation = run.stage, run.stage.gradient_accumulation_steps
        losses: list[torch.Tensor] = []
        for _ in range(accumulation):
            batch = to_device(next(batches), self.device)
            positions = scored_positions(self.adaptor.attention_mask(batch), self.adaptor.labels(batch)) \
                if run.scored_only else None
            with autocast(self.plan.precision, self.device), output_layer_at(run.scored_only, positions):
                loss, terms = self._loss(stage, run.loss_fn, batch, run.student_capture,
                                         self._teacher_outputs(batch, run.teacher_captures, run.cached))
            scaled = loss.float() / accumulation
            (run.scaler.scale(scaled) if run.scaler is not None else scaled).backward()
            losses.append(loss.detach())
        # the losses and terms reach the host in one copy (one device sync per step, not one per
        # micro-batch and term)
        read = torch.stack([v.detach().float().reshape(()) for v in (*losses, *terms.values())]).tolist()
        total = sum(v / accumulation for v in read[:accumulation])
        values = dict(zip(terms, read[accumulation:]))
        if not np.isfinite(total):
            run.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(stage.name, step, total, values)
        if run.scaler is not None:
            run.scaler.unscale_(run.optimizer)  # clip and measure the true gradients
        norm = None
        if stage.max_grad_norm is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(run.params, stage.max_grad_norm))
        elif measure_norm:
            norm = float(torch.nn.utils.get_total_norm([p.grad for p in run.params if p.grad is not None]))
        if run.scaler is not None:
            run.scaler.step(run.optimizer)  # skipped when fp16 gradients overflowed
            run.scaler.update()
        else:
            run.optimizer.step()
        run.last_learning_rate = run.schedule.get_last_lr()[0]  # the rate this step used
        run.schedule.step()
        run.optimizer.zero_grad(set_to_none=True)
        return total, values, norm

    def _teacher_outputs(self, batch: Any, captures: list[FeatureCapture | None],
                         cached: list[Feature] | None) -> list[Any]:
        """The teachers' outputs for a batch: read from the cache, or computed live."""
        if cached is not None:
            assert self.teacher_cache is not None
            indices = self.adaptor.example_indices(batch)
            if indices is None:
                raise ConfigError("the teacher cache needs batches that carry 'example_index' "
                                  "(autodistill.data.TokenizedDataset adds it)")
            return [self.teacher_cache.lookup(indices, cached, self.device)]
        with torch.no_grad():
            inputs = self.adaptor.teacher_inputs(batch)
            for teacher, capture in zip(self.teachers, captures):
                if capture is not None:
                    capture.run(teacher, *inputs.args, **inputs.kwargs)
        return captures

    def _loss(self, stage: Stage, loss_fn: StageLoss, batch: Any, student: FeatureCapture,
              teachers: list[Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs = self.adaptor.student_inputs(batch, with_labels=stage.add_origin_loss)
        student.run(self.student, *inputs.args, **inputs.kwargs)
        return loss_fn(student, teachers, self.adaptor.labels(batch), self.adaptor.attention_mask(batch))

    def save(self, directory: str | Path) -> Path:
        """Save the student (`save_pretrained` when it has one) and its matchers into `directory`."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        save_model(self.student, out)
        if self.matchers.specs:
            self.matchers.save(out)
        return out

