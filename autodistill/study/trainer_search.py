"""Seed 003's Trainer API: `DistillationTrainer.autodistillation(...)`, the search on a Trainer.

    from autodistill import DistillationTrainer       # this class (the study layer's)

    trainer = DistillationTrainer(model=teacher_model, args=TrainingArguments("out", max_steps=50),
                                  train_dataset=train, eval_dataset=dev, compute_metrics=compute_metrics)
    trainer.autodistillation_config = {"search": {"search_space": {...}}, "flash_distillation": {...}}
    best = trainer.autodistillation(teacher_model, model_cls=AutoModelForSequenceClassification)  # OOB
    best = trainer.autodistillation(teacher_model, model_builder, train_func=train, eval_func=evaluate)

It lives in the study layer, not in autodistill/distill/: the engine never imports the search
(tests/test_layers.py), so this subclass of `autodistill.distill.trainer.DistillationTrainer`
adds the search to the Trainer that distils (`distill()` is the engine's).

`autodistillation_config` is seed 003's dict, its `search` part, a YAML path or a typed section
(`load_search_config`). OOB mode: the built-in model builder (`model_builder_builtin`: the
student family's config with the sampled keys replaced, built as `model_cls` with fresh
weights), the built-in train function (`distill()` with the config's flash and regular stages,
or logit KD when it has none, on the Trainer's train dataset and collator, lengths from the
TrainingArguments), and the built-in eval function (`evaluate()` on the eval dataset with
`compute_metrics`, `eval_` taken off its keys; without `compute_metrics`, the figures of the
task `model_cls` implies: masked-token accuracy and perplexity for `*ForMaskedLM` and
`*ForPreTraining`, accuracy otherwise). Latency, parameters and size are
measured by the search (FunctionTask). The study is `<args.output_dir>/study.db` (unless
`search.storage` names one), its students under `<args.output_dir>/trials/`; the result is the
Pareto-best architectures.

The student family (OOB mode) is the Trainer's model when the Trainer holds another model than
the teacher, as in seed 003's masked-LM example (`Trainer(model=mobilebert, ...)`, a BERT
`teacher_model`, `model_cls=AutoModelForPreTraining`: MobileBERT students), else the teacher.
Every key of the search space must be a key of that family's config (one ConfigError naming
the key before any trial), and MobileBERT's `true_hidden_size` follows the sampled
`intra_bottleneck_size`. Students of another model type than the teacher's start from random
weights, as every OOB student does (`init_from_teacher` copies only within one model type);
the search logs this once.

A trial's `distill()` writes no distillation checkpoints unless they were asked for: by
`save_strategy` or `save_steps` other than TrainingArguments' defaults ("steps", 500), or by the
config's `checkpoint_every_steps`. (Under the defaults, `distill()` alone checkpoints every 500
steps and at each stage end: 25 writes a trial for seed 003's 24 flash stages and one regular.)
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn
from transformers import PretrainedConfig

from autodistill.config.distillation import DistillationSection
from autodistill.config.loader import load_search_config
from autodistill.config.stages import FlashTemplateSection, StageSection
from autodistill.distill import trainer as distill_trainer
from autodistill.distill.callbacks import DistillationCallback
from autodistill.errors import ConfigError, InvalidArchitecture, did_you_mean
from autodistill.models.builders import check_architecture, student_config
from autodistill.models.classes import model_class
from autodistill.preflight import first_valid_architecture
from autodistill.space import Architecture, SearchSpace
from autodistill.study.search import AutoDistillation
from autodistill.tasks.registry import DEFAULT_TASK, TASK_KINDS, kind_of_class

logger = logging.getLogger(__name__)

EVAL_PREFIX = "eval_"


class DistillationTrainer(distill_trainer.DistillationTrainer):
    """The engine's DistillationTrainer (`distill()`) with seed 003's `autodistillation()`."""

    autodistillation_config: Any = None

    def autodistillation(self, teacher_model: nn.Module, model_builder: Callable[[Mapping[str, Any]], nn.Module]
                         | None = None, model_cls: type | str | None = None,
                         train_func: Callable[..., nn.Module] | None = None,
                         eval_func: Callable[[nn.Module], Mapping[str, Any]] | None = None) -> list[Architecture]:
        """Search `self.autodistillation_config`'s space for students of `teacher_model`; return
        the Pareto-best architectures (module docstring). The Trainer's model is restored after."""
        if self.autodistillation_config is None:
            raise ConfigError("trainer.autodistillation_config is not set; set it to seed 003's dict "
                              "({'search': {'search_space': {...}}, ...}), a YAML path or a section")
        if teacher_model is None:
            raise ConfigError("teacher_model is None; give the teacher model")
        config = load_search_config(self.autodistillation_config)
        base: PretrainedConfig | None = None
        if model_builder is None:  # OOB mode
            if model_cls is None:
                raise ConfigError("autodistillation needs model_builder (advanced mode) or model_cls "
                                  "(OOB mode, e.g. model_cls=AutoModelForSequenceClassification)")
            base = self._student_family(teacher_model)
            model_builder = functools.partial(self.model_builder_builtin, model_cls=model_cls, base_config=base)
        section: DistillationSection = config.training or DistillationSection(regular_distillation=StageSection())
        agent = AutoDistillation(model_builder, config, output_dir=self.args.output_dir,
                                 progress=not self.args.disable_tqdm)
        if base is not None:
            _check_space_fits(agent.search_space, base)
            teacher_type = getattr(getattr(teacher_model, "config", None), "model_type", None)
            if base.model_type != teacher_type:
                logger.info("OOB students are %s (the Trainer's model), the teacher is %s: students start "
                            "from random weights (no weights are copied across model types)",
                            base.model_type, teacher_type)
        agent.train_func = train_func or functools.partial(self._train_builtin, section=section,
                                                           teacher_model=teacher_model)
        agent.eval_func = eval_func or self._eval_builtin
        own = self.model
        try:
            return agent.search_loop()
        finally:
            self.model = own

    def model_builder_builtin(self, model_arch_paras: Mapping[str, Any], model_cls: type | str, *,
                              base_config: PretrainedConfig) -> nn.Module:
        """OOB mode's student: `base_config` (the student family's, module docstring) with the
        sampled keys replaced, as `model_cls` (a transformers class or its name), freshly
        initialised."""
        config = student_config(base_config, dict(model_arch_paras))
        check_architecture(config)
        # an Auto class (from_config) or a model class (_from_config)
        cls: Any = model_class(model_cls) if isinstance(model_cls, str) else model_cls
        build = getattr(cls, "from_config", None) or cls._from_config  # Auto* / a model class
        attention = getattr(base_config, "_attn_implementation", None)
        try:
            return build(config, **({"attn_implementation": attention} if attention else {}))
        except ValueError as exc:  # transformers' own consistency checks
            raise InvalidArchitecture(str(exc)) from None

    def _student_family(self, teacher_model: nn.Module) -> PretrainedConfig:
        """OOB mode's base config: the Trainer's model's when it holds another model than the
        teacher (seed 003: the MobileBERT to search), else the teacher's."""
        holder = self.model if self.model is not None and self.model is not teacher_model else teacher_model
        base = getattr(holder, "config", None)
        if not isinstance(base, PretrainedConfig):
            raise ConfigError(f"OOB mode builds students from the config of the Trainer's model or the teacher, "
                              f"but {type(holder).__name__} has none; give model_builder=")
        return base

    def _train_builtin(self, model: nn.Module, callbacks: Sequence[DistillationCallback] = (), *,
                       section: DistillationSection, teacher_model: nn.Module) -> nn.Module:
        """OOB mode's training: `distill()` of the config's stages into `model` (a flash template,
        `block_names: bert.encoder.layer.{i}`, expanded to the student's and teacher's depth)."""
        flash = section.flash_distillation
        if isinstance(flash, FlashTemplateSection):
            section = section.model_copy(update={"flash_distillation": flash.expanded(
                student_layers=_depth(model, flash.depth_key), teacher_layers=_depth(teacher_model, flash.depth_key))})
        if "checkpoint_every_steps" not in section.model_fields_set and not _asked_to_save(self.args):
            section = section.model_copy(update={"checkpoint_every_steps": 0})  # no checkpoint writes
        self.model = model
        return self.distill(section, teacher_model, callbacks=callbacks)

    def _eval_builtin(self, model: nn.Module) -> dict[str, float]:
        """OOB mode's evaluation: the Trainer's `evaluate()` (its eval dataset and `compute_metrics`),
        or, when there is no `compute_metrics`, the figures of the task the student's class implies
        on the eval dataset (masked-token accuracy and perplexity for *ForMaskedLM / *ForPreTraining)."""
        if self.eval_dataset is None:
            raise ConfigError("autodistillation's built-in eval function evaluates on the Trainer's "
                              "eval_dataset; give DistillationTrainer(eval_dataset=...) or eval_func=")
        self.model = model
        if self.compute_metrics is None:
            kind = kind_of_class(type(model).__name__) or TASK_KINDS.get(DEFAULT_TASK)
            return dict(kind.evaluate(model, self.get_eval_dataloader(), device=self.args.device))
        metrics = self.evaluate()
        return {key.removeprefix(EVAL_PREFIX): value for key, value in metrics.items()}


def _check_space_fits(space: SearchSpace, base: PretrainedConfig) -> None:
    """Every searched key is a key of the student family's config, and some point of the space
    builds; one ConfigError naming the key otherwise."""
    known = set(base.to_dict())
    for dimension in space.dimensions:
        if dimension.name not in known:
            raise ConfigError(
                f"search.search_space.{dimension.name}: OOB students are {type(base).__name__}s (the config of the "
                f"Trainer's model, or the teacher's when the Trainer holds the teacher), which have no key "
                f"{dimension.name!r}{did_you_mean(dimension.name, known)}; search that family's keys, give the "
                "Trainer a model of the student family (e.g. model=MobileBertForPreTraining(config)) or "
                "give model_builder=")
    first_valid_architecture(space, base, {}, key="search.search_space")


def _asked_to_save(args: Any) -> bool:
    """True when the TrainingArguments' `save_strategy` or `save_steps` differ from their defaults."""
    defaults = {field.name: field.default for field in dataclasses.fields(type(args))}
    strategy = distill_trainer._strategy
    return (strategy(args.save_strategy) != strategy(defaults["save_strategy"])
            or args.save_steps != defaults["save_steps"])


def _depth(model: nn.Module, key: str) -> int | None:
    return getattr(getattr(model, "config", None), key, None)


__all__ = ["DistillationTrainer"]
