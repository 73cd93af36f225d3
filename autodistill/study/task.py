"""The built-in `Task` of a search (study/protocol.py): `DistillationTask` builds, distils
(flash then regular), evaluates and saves Hugging Face students of one teacher and data set.

Everything that is the same for every trial is done once, here: the teacher is loaded
(and evaluated) once, the data is read and tokenised once, the latency inputs are fixed.
A trial then only builds, distils, evaluates and saves its own student.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from autodistill.config.schema import SearchRunConfig
from autodistill.data import PairedInputs, make_loader
from autodistill.data.sources import Splits, load_splits
from autodistill.distill.callbacks import DistillationCallback
from autodistill.distill.checkpoint import fingerprint, read_checkpoint
from autodistill.distill.distiller import Distiller, seed_everything
from autodistill.distill.finetune import cache_key, fine_tune_plan, fine_tuned
from autodistill.distill.teacher_cache import TeacherCache, teacher_fingerprint
from autodistill.errors import AutodistillError, ConfigError, InvalidArchitecture
from autodistill.evaluation.deployment import Deployer, DeploymentTarget, graph_size_mb
from autodistill.evaluation.latency import (
    LatencySpec,
    count_parameters,
    measure_latencies,
    measure_latency,
    model_size_mb,
    paired_ratio,
    resolve_latency_device,
)
from autodistill.models import build_student, load_pretrained
from autodistill.models.builders import check_architecture, student_config, with_vocabulary
from autodistill.models.init_from_teacher import init_from_teacher
from autodistill.models.saving import save_model
from autodistill.models.teacher import load_reporting_fresh
from autodistill.objectives import EAGER, EAGER_LATENCY, LATENCY, PAIRED_TEACHER_LATENCY, SPEEDUP
from autodistill.study.protocol import TrainedStudent, latency_figures
from autodistill.study.trial_checkpoints import TrialFolders
from autodistill.supernet.importance import reorder_by_importance
from autodistill.tasks import TASK_KINDS

log = logging.getLogger(__name__)


class DistillationTask:
    """Teacher, data and settings of a search; `build`, `train`, `evaluate`, `save` per trial
    (the `Task` protocol, study/protocol.py). The config's `task` names the kind (autodistill.tasks:
    sequence classification, masked LM) that collates the data, scores students and names the
    model class; this class is the same for every kind."""

    measures_cost = True  # the paired latency benchmark, parameters and size, before training
    stops_early = True    # train() passes callbacks to the Distiller; checkpoint_score() is validation accuracy

    def __init__(self, config: SearchRunConfig, *, output_dir: Path | None = None,
                 quiet: bool = False) -> None:
        from autodistill.preflight import load_tokenizer

        self.config, self.quiet = config, quiet
        self.output_dir = Path(output_dir or config.output_dir)
        self.kind = TASK_KINDS.get(config.task or "")
        section, data = config.teacher, config.data
        location = section.location()
        self.splits: Splits = load_splits(data, labels=self.kind.labels)
        self.tokenizer = load_tokenizer(data.tokenizer or location,
                                        key="data.tokenizer" if data.tokenizer else "teacher.model")
        self.train_set, validation_set, test_set = self.kind.datasets(
            self.splits, self.tokenizer, max_length=data.max_length, seed=data.split_seed,
            training_windows=data.training_windows)
        # a student tokenizer of its own (student.tokenizer): every split is tokenised for it too, once;
        # distillation reads both inputs, the students' figures their own tokens, the teacher's its own
        self.student_tokenizer = load_tokenizer(config.student.tokenizer or "", key="student.tokenizer") \
            if config.student_reads_other_tokens else None
        self.distillation_set: Any = self.train_set
        student_sets = (validation_set, test_set)
        if self.student_tokenizer is not None:
            student_train, *student_sets = self.kind.datasets(
                self.splits, self.student_tokenizer, max_length=data.max_length, seed=data.split_seed,
                training_windows=data.training_windows)
            self.distillation_set = PairedInputs(self.train_set, student_train)
        num_labels = section.num_labels or len(self.splits.train.label_names)
        self.model_kwargs = self.kind.model_kwargs(self.splits.train.label_names, num_labels)
        self.teacher_reused = False
        if section.fine_tune is None:  # its head must fit the task and the data as it is
            from autodistill.preflight import model_config

            self.kind.check_teacher(self.splits.train, model_config(location, key="teacher.model"),
                                    location=location)
        if section.fine_tune is not None:
            location, self.teacher_reused = self._fine_tune(location, validation_set)
        self.teacher_location = location
        self.teacher = load_pretrained(location, model_cls=section.model_cls, role="teacher",
                                       attn_implementation=section.attn_implementation,
                                       **self.model_kwargs).eval()
        self.train_loader = self._train_loader()
        evaluation = config.auto_distillation.evaluation
        # every validation set by name; the first (`validation_loader`) chooses architectures
        self.validation_loaders, self.test_loader = self._evaluation_loaders(
            self.student_tokenizer or self.tokenizer, *student_sets)
        self.validation_loader = next(iter(self.validation_loaders.values()))
        self.teacher_loaders = (self.validation_loaders, self.test_loader) if self.student_tokenizer is None \
            else self._evaluation_loaders(self.tokenizer, validation_set, test_set)
        latency = evaluation.latency
        self.latency_spec = LatencySpec(
            batch_size=latency.batch_size, sequence_length=latency.sequence_length or data.max_length,
            warmup=latency.warmup, repeats=latency.repeats, threads=latency.threads,
            device=latency.device)
        resolve_latency_device(latency.device)  # a device this machine lacks fails before training
        self.deployer = self._deployer(config) if evaluation.deployment.deployed else None
        self.teacher_cache = TeacherCache(self.teacher, self.distillation_set,
                                          root=self.output_dir / "teacher_cache") \
            if config.auto_distillation.teacher_cache and self.kind.caches_teacher_logits else None
        if config.auto_distillation.teacher_cache and self.teacher_cache is None:
            log.info("task %s: the teacher runs live (its logits are too large to cache)", self.kind.name)
        self.student_cls = config.student.model_cls or section.model_cls
        self.student_base = config.student.base_config(self.teacher.config, num_labels=num_labels)
        if self.student_tokenizer is not None:  # embeddings for the students' own vocabulary
            self.student_base = with_vocabulary(self.student_base, self.student_tokenizer)
        self._teacher_figures: dict[str, Any] | None = None
        # what init_from_teacher copies: with student.importance_order, a copy of the teacher whose
        # heads and FFN neurons are reordered most important first (same function; the teacher
        # itself, its cache and fingerprint stay as they are)
        self.init_teacher = self.teacher
        if config.student.importance_order:
            self.init_teacher = copy.deepcopy(self.teacher)
            reorder_by_importance(self.init_teacher,
                                  self.importance_batches(config.auto_distillation.supernet.importance_batches))
        self.deployed_teacher = None if self.deployer is None else self.deployer.cached(
            self.teacher, self._teacher_deployment_key())
        # the study's teacher latency (its teacher row): every student's latency is expressed at it
        # (and, deployed, the eager teacher's, which the eager figures are expressed at)
        self.reference_latency_ms: float | None = None
        self.eager_reference_latency_ms: float | None = None

    def _deployer(self, config: SearchRunConfig) -> Deployer:
        """evaluation.deployment's deployer: the graphs under output_dir/deployed, ONNX Runtime on
        evaluation.latency.threads, static int8 calibrated on `calibration_batches` training
        batches drawn with the search's seed (the same ones on every run)."""
        evaluation = config.auto_distillation.evaluation
        section, latency = evaluation.deployment, evaluation.latency
        if torch.device(latency.device).type != "cpu":
            raise ConfigError(f"evaluation.deployment.runtime: {section.runtime} is timed on the CPU, but "
                              f"evaluation.latency.device is {latency.device!r}; set it to cpu")
        calibration = self.calibration_batches() if section.quantization == "static_int8" else []
        return Deployer(DeploymentTarget(section.runtime, section.quantization), self.output_dir / "deployed",
                        threads=latency.threads, calibration=calibration)

    def calibration_batches(self) -> list[dict[str, Any]]:
        """Static int8's calibration sample: the first `evaluation.deployment.calibration_batches`
        training batches in the order the search's seed gives them (the same on every run)."""
        loader = make_loader(self.train_set, batch_size=self.config.data.batch_size, shuffle=True,
                             seed=self.config.auto_distillation.seed)
        count = self.config.auto_distillation.evaluation.deployment.calibration_batches
        return [batch for batch, _ in zip(loader, range(count))]

    def _teacher_deployment_key(self) -> str:
        """The deployed teacher's cache key: its weights, the target, and static int8's calibration."""
        section = self.config.auto_distillation.evaluation.deployment
        settings = {"teacher": teacher_fingerprint(self.teacher), **section.model_dump()}
        if section.quantization == "static_int8":
            settings |= {"train": self.splits.train.fingerprint(), "seed": self.config.auto_distillation.seed,
                         "batch_size": self.config.data.batch_size, "max_length": self.config.data.max_length}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    def _evaluation_loaders(self, tokenizer: Any, validation_set: Any, test_set: Any
                            ) -> tuple[dict[str, DataLoader], DataLoader | None]:
        """Every validation set by name (the first is `validation_set`, tokenised already) and the test
        split (`test_set`), as loaders for the models that read `tokenizer`."""
        data, batch_size = self.config.data, self.config.auto_distillation.evaluation.batch_size
        loaders = {name: make_loader(
            validation_set if index == 0 else self.kind.datasets(
                replace(self.splits, train=part, validation=part, test=None), tokenizer,
                max_length=data.max_length, seed=data.split_seed)[1],
            batch_size=batch_size, shuffle=False)
            for index, (name, part) in enumerate(self.splits.validations.items())}
        return loaders, None if test_set is None else make_loader(test_set, batch_size=batch_size, shuffle=False)

    def _fine_tune(self, location: str, validation_set: Any) -> tuple[str, bool]:
        """The teacher trained on the training split with the task's own loss (masked LM: the
        MLM objective on the corpus text, which also trains a head the teacher shipped without,
        alone first with `head_epochs`), scored on `validation_set` once trained."""
        section, data = self.config.teacher, self.config.data
        ft = section.fine_tune
        assert ft is not None
        auto = self.config.auto_distillation  # the teacher fine-tunes at the run's precision
        settings = {**ft.key_settings(), "max_length": data.max_length, **self.model_kwargs,
                    "model_cls": section.model_cls,
                    **({"precision": auto.precision} if auto.precision != "fp32" else {}),
                    **({"training_windows": True} if data.training_windows else {})}
        key = cache_key(location, settings, {"train": self.splits.train.fingerprint(),
                                             "labels": list(self.splits.train.label_names)})
        folder, reused = fine_tuned(
            location, key=key, cache_root=self.output_dir / "teacher", quiet=self.quiet,
            plan=lambda head: fine_tune_plan(
                epochs=ft.epochs, learning_rate=ft.learning_rate, warmup_ratio=ft.warmup_ratio,
                weight_decay=ft.weight_decay, seed=ft.seed, progress=not self.quiet, precision=auto.precision,
                precision_force=auto.precision_force, target_loss=self.kind.target_loss, head=head,
                head_epochs=ft.head_epochs, head_learning_rate=ft.head_learning_rate),
            train=make_loader(self.train_set, batch_size=ft.batch_size, shuffle=True, seed=ft.seed),
            load=lambda where: load_reporting_fresh(where, model_cls=section.model_cls, role="teacher",
                                                    **self.model_kwargs),
            save_tokenizer=self.tokenizer.save_pretrained,
            evaluate=None if validation_set is None else lambda model: self.kind.evaluate(
                model, make_loader(validation_set, batch_size=self.config.auto_distillation.evaluation.batch_size,
                                   shuffle=False), device=next(model.parameters()).device))
        return str(folder), reused

    def check_space(self, names_and_values: Mapping[str, Any]) -> None:
        """Every searched and fixed key exists in the teacher's config (a ConfigError if not)."""
        student_config(self.student_base, {**self.config.student.fixed, **names_and_values})

    # -- the three functions of seed 003's AutoDistillation ---------------------------------
    def build(self, architecture: Mapping[str, Any]) -> nn.Module:
        """The built-in model_builder: the teacher's config with `fixed` and the sampled keys,
        initialised from the run's seed (a trial's student is the same in any process: a retry
        that resumes a lost trial, or a rerun, trains what the first run trained)."""
        seed_everything(self.config.auto_distillation.seed)
        student = self.fresh(architecture)
        if self.config.student.init_from_teacher:
            report = init_from_teacher(student, self.init_teacher,
                                       shared_vocabulary=self.student_tokenizer is None)
            log.info("student initialised from teacher layers %s (%d tensors sliced, %d left fresh)",
                     list(report.layer_map), len(report.sliced), len(report.skipped))
        return student

    def check_architecture(self, architecture: Mapping[str, Any]) -> None:
        """InvalidArchitecture when no student can have `architecture` (with `student.fixed`)."""
        check_architecture(student_config(self.student_base, {**self.config.student.fixed, **dict(architecture)}))

    def fresh(self, architecture: Mapping[str, Any]) -> nn.Module:
        """A student of the built-in class, freshly initialised; InvalidArchitecture if none can exist."""
        overrides = {**self.config.student.fixed, **dict(architecture)}
        self.check_architecture(architecture)
        try:
            return build_student(self.student_base, overrides, model_cls=self.student_cls,
                                 attn_implementation=self.config.student.attn_implementation)
        except ValueError as exc:  # transformers' own consistency checks
            raise InvalidArchitecture(str(exc)) from None

    # -- the supernet strategy (autodistill.study.supernet_search) ---------------------------
    def supernet_key(self, dimensions: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
        """The content key of this search's supernet: teacher weights, training data, space, settings."""
        from autodistill.supernet import supernet_key

        return supernet_key(teacher_fingerprint=teacher_fingerprint(self.teacher),
                            data_fingerprint=self.splits.train.fingerprint(), space=dimensions,
                            settings={**settings, "max_length": self.config.data.max_length,
                                      "batch_size": self.config.data.batch_size,
                                      "fixed": dict(self.config.student.fixed)})

    def importance_batches(self, count: int) -> list[dict[str, Any]]:
        """The first `count` training batches in file order (the same ones on every run)."""
        loader = make_loader(self.train_set, batch_size=self.config.data.batch_size, shuffle=False)
        return [batch for batch, _ in zip(loader, range(count))]

    def _train_loader(self) -> DataLoader:
        """The training batches in the order the seed fixes: a fresh loader per trial, so every
        trial (and a retry resuming a lost one) sees the same order whatever ran before it."""
        return make_loader(self.distillation_set, batch_size=self.config.data.batch_size, shuffle=True,
                           seed=self.config.auto_distillation.seed)

    def train(self, student: nn.Module, callbacks: Sequence[DistillationCallback] = (), *,
              folders: TrialFolders | None = None) -> TrainedStudent:
        """Flash then regular distillation from the teacher; the student with its feature matchers.

        With `folders` (the search's, study/trial_checkpoints.py), checkpoints and event files go
        there and a retried trial resumes from the checkpoint of the trial its worker lost. With
        `eval_every_steps`, every validation set is evaluated (and logged) during training."""
        section = self.config.auto_distillation
        plan = section.plan(student_layers=_depth(student), teacher_layers=_depth(self.teacher))
        distiller = Distiller(self.teacher, student, plan, teacher_cache=self.teacher_cache,
                              callbacks=callbacks, quiet=self.quiet)

        def evaluate(model: nn.Module, loader: Any) -> Mapping[str, float]:
            return self.kind.evaluate(model, loader, device=distiller.device)

        resume = None if folders is None else self._resumable(folders.resume_from, distiller)
        distiller.fit(self._train_loader(), self.validation_loaders if plan.eval_every_steps else None,
                      eval_fn=evaluate, checkpoint_dir=None if folders is None else folders.checkpoints,
                      resume_from=resume, log_dir=None if folders is None else folders.logs)
        return TrainedStudent(student, {"matchers": distiller.matchers})

    @staticmethod
    def _resumable(folder: Path | None, distiller: Distiller) -> Path | None:
        """`folder`, if its checkpoint is of this plan and student (a study continued with another
        distillation config trains the retry from scratch, saying so)."""
        if folder is None:
            return None
        try:
            read_checkpoint(folder, fingerprint(distiller.plan, distiller.student), fix="")
        except ConfigError as exc:
            log.warning("the retried trial trains from scratch: %s", str(exc).rstrip("; "))
            return None
        return folder

    def validation_accuracy(self, model: nn.Module) -> float:
        """The task's `accuracy` on the (first) validation set (masked LM: masked-token accuracy)."""
        return self.kind.evaluate(model, self.validation_loader, device=_device(model))["accuracy"]

    def checkpoint_score(self, model: nn.Module) -> float:
        """Early stopping's score during regular distillation: validation accuracy."""
        return self.validation_accuracy(model)

    def evaluate(self, model: nn.Module, *,
                 loaders: tuple[dict[str, DataLoader], DataLoader | None] | None = None) -> dict[str, float]:
        """The task's figures on the first validation set (`accuracy` chooses architectures; masked
        LM adds `perplexity`), on every other one prefixed with its name (`<name>_accuracy`) and on
        the test split, prefixed `test_` (reported only). `loaders` (validation sets by name, test)
        replace the students' (the teacher's figures read its own tokens where `student.tokenizer`
        gives the students other ones).

        With evaluation.deployment on, these are the deployed model's figures (the teacher's
        cached graph; a student's graph, kept for `save` to put in its trial folder), through the
        task's own evaluation, and the eager module's stay beside them prefixed `eager_`."""
        eager = self._figures(model, next(model.parameters()).device, loaders)
        if self.deployer is None:
            return eager
        deployed = self.deployed_teacher if model is self.teacher else None
        return {**_eager(eager), **self._figures(deployed or self.deployer.ship(model), torch.device("cpu"), loaders)}

    def _figures(self, model: nn.Module, device: torch.device,
                 loaders: tuple[dict[str, DataLoader], DataLoader | None] | None) -> dict[str, float]:
        started = time.perf_counter()
        result: dict[str, float] = {}
        validations, test = loaders or (self.validation_loaders, self.test_loader)  # the students' by default
        for index, (name, loader) in enumerate(validations.items()):
            prefix = "" if index == 0 else f"{name}_"
            result.update({prefix + metric: value for metric, value in
                           self.kind.evaluate(model, loader, device=device).items()})
        if test is not None:
            result.update({f"test_{name}": value for name, value in
                           self.kind.evaluate(model, test, device=device).items()})
        result["eval_seconds"] = time.perf_counter() - started
        return result

    def cost(self, model: nn.Module) -> dict[str, float]:
        """Latency (a benchmark on the configured device), parameters and size: none of them
        depends on trained weights, so the search measures them before training.

        The teacher is timed in the same benchmark, call for call with the student, and the
        student's `speedup` is the ratio of the two (`paired_ratio`: of their fastest calls, the
        ones a busy machine disturbed least). The latency the study ranks by, `latency_ms`, is the
        student's time at the study's reference teacher latency, `reference_latency_ms` (the
        teacher row): the reference over the speed-up, so a trial timed while another process
        loads the machine keeps its place. The raw figures stay as `latency_p50_ms`,
        `latency_p90_ms`, `latency_min_ms` and the teacher's `teacher_latency_p50_ms` and
        `teacher_latency_min_ms`; `latency_spread` and `latency_attempts` say how steady the
        measurement was (evaluation/latency.py).

        With evaluation.deployment on, the untrained student is deployed (exported, quantised:
        a graph that cannot be exported fails here, before training) and these figures are the
        deployed graph's, timed call for call with the deployed teacher in the same runtime,
        `size_mb` the graph file's; the eager module's stay beside them prefixed `eager_`, each
        at its own teacher's reference.
        """
        if self.reference_latency_ms is None:
            raise AutodistillError(
                "DistillationTask.cost needs the study's reference teacher latency: set "
                "task.reference_latency_ms from the study's teacher row (run_search does)")
        if self.deployer is None or self.deployed_teacher is None:
            return {**self._paired(model, self.teacher, self.reference_latency_ms),
                    "params": count_parameters(model), "size_mb": model_size_mb(model)}
        eager = {**self._paired(model, self.teacher, self.eager_reference_latency_ms or self.reference_latency_ms),
                 "size_mb": model_size_mb(model)}
        with self.deployer.scratch(model) as deployed:
            figures = self._paired(deployed, self.deployed_teacher, self.reference_latency_ms)
            figures["size_mb"] = graph_size_mb(deployed)
        return {**_eager(eager), **figures, "params": count_parameters(model)}

    def _paired(self, model: nn.Module, teacher: nn.Module, reference_ms: float) -> dict[str, float]:
        """`model` timed call for call with `teacher` (module docstring of evaluation/latency.py)."""
        student, paired = measure_latencies([model, teacher], self.latency_spec)
        ratio = paired_ratio(student, paired)
        return {**latency_figures(student), LATENCY.key: ratio * reference_ms, SPEEDUP: 1 / ratio,
                PAIRED_TEACHER_LATENCY: paired.p50_ms, "teacher_latency_min_ms": paired.min_ms,
                "latency_spread": max(student.spread, paired.spread)}

    def teacher_cost(self) -> dict[str, float]:
        """The teacher's own latency, parameters and size: the reference row of the study,
        measured once when the study starts (taken again while its spread is high). Its
        `latency_ms`, the median, is the reference every student's latency is expressed at.
        Deployed: the deployed teacher's figures, the eager ones prefixed `eager_`."""
        figures = {**_alone(self.teacher, self.latency_spec), "size_mb": model_size_mb(self.teacher)}
        if self.deployed_teacher is not None:
            figures = {**_eager(figures), **_alone(self.deployed_teacher, self.latency_spec),
                       "size_mb": graph_size_mb(self.deployed_teacher)}
        return {**figures, "params": count_parameters(self.teacher)}

    def teacher_figures(self, recorded: Mapping[str, Any] | None) -> Mapping[str, Any]:
        """The study's teacher row (`recorded`), or the teacher measured now (latency, size,
        validation and test accuracy; once per task, so a supernet search's two studies share
        it). Its latency becomes the reference every student's latency is expressed at (a study
        recorded before `latency_ms` existed has its raw teacher median, as its students do);
        deployed, its `eager_latency_ms` is the eager figures' reference."""
        if recorded is None:
            if self._teacher_figures is None:
                self._teacher_figures = {**self.teacher_cost(),
                                         **self.evaluate(self.teacher, loaders=self.teacher_loaders)}
            recorded = self._teacher_figures
        eager = EAGER_LATENCY.value(recorded)
        if (self.deployer is None) != (eager is None):
            ran = "an ONNX Runtime deployment" if eager is not None else "runtime torch"
            raise ConfigError(f"evaluation.deployment: the study's teacher row was measured with {ran}, "
                              "and the config asks for another; set evaluation.deployment as the study "
                              "ran, or give search.study_name a new name")
        self.reference_latency_ms, self.eager_reference_latency_ms = LATENCY.value(recorded), eager
        return recorded

    def save(self, student: TrainedStudent, directory: Path) -> None:
        """The student's weights, tokenizer and matchers; deployed, the graphs `evaluate` scored."""
        save_model(student.model, directory)  # the built-in students are transformers models: save_pretrained
        if self.deployer is not None:
            self.deployer.ship_into(student.model, directory)
        (self.student_tokenizer or self.tokenizer).save_pretrained(directory)  # the one the student reads
        matchers = student.artifacts.get("matchers")
        if matchers is not None and matchers.specs:
            matchers.save(directory)


def _device(model: nn.Module) -> torch.device:
    """Where `model`'s parameters are; the CPU for one with none (a deployed ONNX Runtime graph)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _eager(figures: Mapping[str, Any]) -> dict[str, Any]:
    return {EAGER + key: value for key, value in figures.items()}


def _alone(model: nn.Module, spec: LatencySpec) -> dict[str, float]:
    latency = measure_latency(model, spec)
    return {LATENCY.key: latency.p50_ms, **latency_figures(latency)}


def _depth(model: nn.Module) -> int | None:
    return getattr(getattr(model, "config", None), "num_hidden_layers", None)
