"""`DistillationTrainer`: a `transformers.Trainer` whose `distill()` runs a distillation plan.

Seed 000's usage, with this project's config vocabulary::

    from transformers import TrainingArguments
    from autodistill.distill.trainer import DistillationTrainer

    # replace transformers.Trainer(...) with DistillationTrainer(...); `model` is the student
    trainer = DistillationTrainer(model=student, args=TrainingArguments("out", max_steps=500),
                                  train_dataset=train_dataset, data_collator=collator)
    d_conf = {"train": {"criterion": {"KnowledgeDistillationLoss": {
        "temperature": 2.0, "loss_types": ["CE", "CE"], "loss_weights": [0.5, 0.5]}}}}
    model = trainer.distill(distillation_config=d_conf, teacher_model=teacher_model)
    trainer.save_model()            # the student, and its feature matchers (matchers.pt)

The training loop is `Distiller`'s (one loop in the project); the Trainer supplies the
data (`get_train_dataloader()`: its dataset, collator and batch size) and, through its
`TrainingArguments`, every setting the distillation config leaves unset.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import transformers
from torch import nn

from autodistill.config.distillation import DistillationSection, LoggingSection
from autodistill.config.loader import load_distillation_section, validate
from autodistill.config.plan import DistillationPlan, Stage
from autodistill.config.sections import OptimizerSection, ScheduleSection
from autodistill.data.adaptor import DataAdaptor
from autodistill.data.paired import STUDENT_FIELDS
from autodistill.distill.callbacks import DistillationCallback, DistillationControl, DistillationState
from autodistill.distill.distiller import Distiller, FitResult
from autodistill.errors import ConfigError

CHECKPOINTS = "distill-checkpoints"  # under TrainingArguments.output_dir

# TrainingArguments.lr_scheduler_type -> (our schedule, whether it warms up)
_SCHEDULES = {
    "linear": ("linear", True),
    "cosine": ("cosine", True),
    "cosine_with_min_lr": ("cosine", True),
    "constant": ("constant", False),  # transformers' "constant" ignores warmup
    "constant_with_warmup": ("constant", True),
}


def section_from(config: Any) -> DistillationSection:
    """A validated `DistillationSection` from a YAML path, a mapping or a section."""
    return load_distillation_section(config)


def _strategy(value: Any) -> str:
    """A TrainingArguments choice (an enum member or its string) as its string."""
    return str(getattr(value, "value", value))


def _output_dir(args: transformers.TrainingArguments) -> str:
    """`args.output_dir`: TrainingArguments fills in its default where it was given as None."""
    assert args.output_dir is not None
    return args.output_dir


def _schedule_from(args: transformers.TrainingArguments) -> ScheduleSection:
    kind = _strategy(args.lr_scheduler_type)
    if kind not in _SCHEDULES:
        raise ConfigError(
            f"TrainingArguments.lr_scheduler_type {kind!r} has no equivalent here; use one of "
            f"{', '.join(_SCHEDULES)}, or set `schedule:` in the distillation config"
        )
    name, warms_up = _SCHEDULES[kind]
    raw: dict[str, Any] = {"name": name}
    warmup = float(args.warmup_steps or 0)
    if warms_up:
        if warmup >= 1:
            raw["warmup_steps"] = int(warmup)
        elif warmup > 0:
            raw["warmup_ratio"] = warmup
        elif ratio := getattr(args, "warmup_ratio", 0):  # transformers < 5
            raw["warmup_ratio"] = float(ratio)
    if kind == "cosine_with_min_lr":
        # a dict once TrainingArguments has parsed it (it also takes a JSON string)
        kwargs = args.lr_scheduler_kwargs
        extra = dict(kwargs) if isinstance(kwargs, dict) else {}
        if "min_lr_rate" in extra:
            raw["min_lr_ratio"] = float(extra["min_lr_rate"])
        elif "min_lr" in extra:
            raw["min_lr_ratio"] = float(extra["min_lr"]) / args.learning_rate
    return validate(ScheduleSection, raw, source="TrainingArguments", prefix=("schedule",))


def _optimizer_from(args: transformers.TrainingArguments) -> OptimizerSection:
    optim = _strategy(args.optim)
    raw: dict[str, Any] = {"name": "SGD" if optim == "sgd" else "AdamW",
                           "learning_rate": args.learning_rate, "weight_decay": args.weight_decay}
    if raw["name"] == "AdamW":
        raw.update(betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
    return validate(OptimizerSection, raw, source="TrainingArguments", prefix=("optimizer",))


def _interval(args: transformers.TrainingArguments, strategy: str, steps: float, *, key: str,
              steps_per_epoch: int | None) -> int:
    """Optimiser steps between two saves or evaluations (0: none) for a TrainingArguments strategy."""
    kind = _strategy(strategy)
    if kind == "no":
        return 0
    if kind == "epoch":
        if steps_per_epoch is None:
            raise ConfigError(f"TrainingArguments.{key}_strategy 'epoch' needs a train loader with a length; "
                              f"use {key}_strategy='steps'")
        return max(1, steps_per_epoch)
    if kind != "steps":
        raise ConfigError(f"TrainingArguments.{key}_strategy {kind!r} is not supported by distill(); "
                          f"use 'steps', 'epoch' or 'no'")
    if steps >= 1:
        return int(steps)
    if args.max_steps and args.max_steps > 0:
        return max(1, round(steps * args.max_steps))
    raise ConfigError(f"TrainingArguments.{key}_steps {steps} is a ratio of max_steps, which is not set; "
                      f"give {key}_steps as a whole number of steps")


def plan_with_arguments(section: DistillationSection, args: transformers.TrainingArguments, *,
                        steps_per_epoch: int | None = None) -> DistillationPlan:
    """`section`'s plan, with what it leaves unset taken from the Trainer's arguments.

    Set in the config, a value wins (a stage's own optimizer, schedule, ... win over the
    section's, as always). Unset: optimizer (AdamW from learning_rate, weight_decay,
    adam_beta1/2, adam_epsilon; SGD when `optim="sgd"`), schedule (lr_scheduler_type,
    warmup_steps), gradient_accumulation_steps, max_grad_norm (0: no clipping), seed,
    device (the arguments' device), progress (`not disable_tqdm`), precision (`bf16`, `fp16`),
    checkpoint_every_steps (`save_strategy`/`save_steps`), eval_every_steps
    (`eval_strategy`/`eval_steps`, which defaults to `logging_steps`) and TensorBoard logging
    (`report_to` naming tensorboard: `<output_dir>/runs`, every `logging_steps`). A stage with
    neither train_steps nor epochs runs `max_steps` steps when > 0, else `num_train_epochs`
    epochs; `steps_per_epoch` (optimiser steps) resolves the "epoch" strategies.
    """
    given = section.model_fields_set
    update: dict[str, Any] = {}
    if section.optimizer is None:
        update["optimizer"] = _optimizer_from(args)
    if section.schedule is None:
        update["schedule"] = _schedule_from(args)
    if section.gradient_accumulation_steps is None:
        update["gradient_accumulation_steps"] = max(1, int(args.gradient_accumulation_steps))
    if section.max_grad_norm is None and args.max_grad_norm and args.max_grad_norm > 0:
        update["max_grad_norm"] = float(args.max_grad_norm)
    if "seed" not in given:
        update["seed"] = int(args.seed)
    if "device" not in given:
        update["device"] = args.device.type
    if "progress" not in given:
        update["progress"] = not args.disable_tqdm
    if "precision" not in given:
        update["precision"] = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    if "checkpoint_every_steps" not in given:
        update["checkpoint_every_steps"] = _interval(args, args.save_strategy, args.save_steps, key="save",
                                                     steps_per_epoch=steps_per_epoch)
    if "eval_every_steps" not in given:
        update["eval_every_steps"] = _interval(args, args.eval_strategy, args.eval_steps or args.logging_steps,
                                               key="eval", steps_per_epoch=steps_per_epoch)
    if "logging" not in given and "tensorboard" in (args.report_to or []):
        every = _interval(args, args.logging_strategy, args.logging_steps, key="logging",
                          steps_per_epoch=steps_per_epoch) or 1
        update["logging"] = LoggingSection(tensorboard=str(Path(_output_dir(args)) / "runs"), every_steps=every)
    plan = section.model_copy(update=update).plan()

    def length(stage: Stage) -> Stage:
        if stage.train_steps is not None or stage.epochs is not None:
            return stage
        if args.max_steps is not None and args.max_steps > 0:
            return dataclasses.replace(stage, train_steps=int(args.max_steps))
        return dataclasses.replace(stage, epochs=float(args.num_train_epochs))

    return dataclasses.replace(plan, stages=tuple(length(s) for s in plan.stages))


class _TrainerLog(DistillationCallback):
    """Reports distillation steps and evaluations through the Trainer's `log()` (its callbacks,
    log_history), with the global step and the epoch (train-loader passes) of the run."""

    def __init__(self, trainer: DistillationTrainer) -> None:
        self.trainer = trainer
        self.start = trainer.state.global_step

    def _sync(self, state: DistillationState) -> None:
        self.trainer.state.global_step = self.start + state.global_step
        self.trainer.state.epoch = state.epoch

    def on_step_end(self, state: DistillationState, control: DistillationControl) -> None:
        trainer, args = self.trainer, self.trainer.args
        self._sync(state)
        if _strategy(args.logging_strategy) != "steps":
            return
        every = args.logging_steps
        every = int(every) if every >= 1 else max(1, round(every * max(1, state.total_steps)))
        if every > 0 and state.step % every == 0:
            logs = {"distill_loss": state.loss, "learning_rate": state.learning_rate}
            if state.grad_norm is not None:
                logs["grad_norm"] = state.grad_norm
            trainer.log(logs)
            if trainer.control.should_training_stop:
                control.should_stop = True

    def on_evaluate(self, state: DistillationState, control: DistillationControl) -> None:
        self._sync(state)
        self.trainer.log({f"eval_{name}_{metric}" if name != "eval" else f"eval_{metric}": value
                          for name, metrics in state.metrics.items() for metric, value in metrics.items()})


class DistillationTrainer(transformers.Trainer):
    """A `transformers.Trainer` that can distil a teacher into its model (the student).

    Usage (seed 000)::

        trainer = DistillationTrainer(model=student, args=training_args,
                                      train_dataset=train_dataset, data_collator=collator)
        d_conf = {"train": {"criterion": {"KnowledgeDistillationLoss": {
            "temperature": 2.0, "loss_types": ["CE", "CE"], "loss_weights": [0.5, 0.5]}}}}
        model = trainer.distill(distillation_config=d_conf, teacher_model=teacher_model)
        trainer.save_model()   # student + matchers.pt (when intermediate layers were matched)

    Everything else (`evaluate`, `predict`, `save_model`, `push_to_hub`) is the Trainer's.
    `distill()` runs in one process: it does not use DDP, FSDP or DeepSpeed.
    """

    distiller: Distiller | None = None
    distillation_result: FitResult | None = None

    def distill(self, distillation_config: Any,
                teacher_model: nn.Module | Sequence[nn.Module] | Mapping[str, nn.Module], *,
                callbacks: Sequence[DistillationCallback] = (),
                adaptor: DataAdaptor | None = None, resume_from_checkpoint: bool | str | None = None
                ) -> nn.Module:
        """Distil `teacher_model` into `self.model` on `self.get_train_dataloader()`; return the student.

        `distillation_config`: a YAML path, a mapping, a `DistillationSection` (completed
        from `self.args`, see `plan_with_arguments`) or a `DistillationPlan` (used as it is).
        `teacher_model`: one model, a list, or a name -> model mapping. `callbacks` receive
        the Distiller's events (one may stop the run); `adaptor` turns batches into model
        inputs (default: dict batches, `labels` passed to the student only for
        `add_origin_loss`). The run is kept as `self.distiller`, its losses as
        `self.distillation_result`. Config problems raise `ConfigError` before any step.

        Checkpoints (every `save_steps`, and at each stage end) go to `<output_dir>/distill-checkpoints`
        and are removed when the run completes; `resume_from_checkpoint` (True: that folder, or a
        folder) continues an interrupted run exactly. With an `eval_dataset` and `eval_strategy`,
        the student is evaluated (accuracy) every `eval_steps` and at each stage end, logged as
        `eval_accuracy`.

        A student with a tokenizer of its own reads the `student_*` columns of an
        `autodistill.data.PairedInputs` train dataset (kept where `remove_unused_columns` drops others).
        """
        if self.args.remove_unused_columns:  # the columns the Trainer keeps: the student's own inputs too
            self._set_signature_columns_if_needed()
            columns: list[str] = list(self._signature_columns or ())
            # transformers declares the attribute as None (its value before the call above)
            self._signature_columns = list(dict.fromkeys([*columns, *STUDENT_FIELDS]))  # type: ignore[assignment]
        loader = self.get_train_dataloader()
        try:
            per_epoch: int | None = max(1, len(loader) // max(1, int(self.args.gradient_accumulation_steps)))
        except TypeError:
            per_epoch = None
        if isinstance(distillation_config, DistillationPlan):
            plan = distillation_config
        else:
            plan = plan_with_arguments(section_from(distillation_config), self.args, steps_per_epoch=per_epoch)
        if self.model is None:
            raise ConfigError("the trainer has no model; give the student as `model=`")
        if teacher_model is None:
            raise ConfigError("teacher_model is None; give the teacher model (or a list/mapping of them)")
        if getattr(self.args, "world_size", 1) > 1:
            raise ConfigError(
                f"distill() runs in one process, but world_size is {self.args.world_size}; "
                "launch it without torchrun/accelerate multi-process"
            )
        if self.control.should_training_stop:  # left over from an earlier train()
            self.control.should_training_stop = False
        self.distiller = Distiller(teacher_model, self.model, plan, adaptor=adaptor,
                                   callbacks=[_TrainerLog(self), *callbacks],
                                   quiet=not plan.progress)
        checkpoints = Path(_output_dir(self.args)) / CHECKPOINTS
        resume = checkpoints if resume_from_checkpoint is True else resume_from_checkpoint or None
        evaluate = self.eval_dataset is not None and plan.eval_every_steps > 0
        result = self.distiller.fit(loader, {"eval": self.get_eval_dataloader()} if evaluate else None,
                                    checkpoint_dir=checkpoints if plan.checkpoint_every_steps else None,
                                    resume_from=resume)
        if plan.checkpoint_every_steps and self.args.should_save:
            shutil.rmtree(checkpoints, ignore_errors=True)  # the run is complete: nothing left to resume
        self.distillation_result = result
        losses = result.losses
        if losses:
            self.log({"distill_final_loss": losses[-1], "distill_steps": float(len(losses)),
                      "distill_runtime": sum(s.seconds for s in result.stages)})
        return self.model

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The Trainer's save, plus the distillation's feature matchers (`matchers.pt`) if any."""
        super().save_model(output_dir, _internal_call=_internal_call)
        matchers = self.distiller.matchers if self.distiller is not None else None
        if matchers is not None and matchers.specs and self.args.should_save:
            matchers.save(output_dir if output_dir is not None else _output_dir(self.args))
