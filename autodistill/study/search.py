"""`AutoDistillation`: the search loop of seed 003, on an Optuna study.

    agent = AutoDistillation(model_builder, autodistillation_config)   # seed 003, as written
    agent.train_func = train_func
    agent.eval_func = eval_func
    best = agent.search_loop()        # the Pareto-best architectures

    agent = AutoDistillation(task, search_section, storage_url="sqlite:///runs/x/study.db",
                             study_name="x", output_dir="runs/x")

`task` is a `Task` (study/protocol.py: build, cost, train, evaluate, save; the built-in
`DistillationTask` is one), or seed 003's model builder with `train_func`, `eval_func` (and
optionally `save_func`, `cost_func`, `checkpoint_func`, `latency`), which `FunctionTask` adapts;
latency, params and size that eval_func does not return are measured by the search. The config
and the defaults of storage, study name and output dir: the class docstring.

Each iteration asks the advisor for an architecture (`model_arch_proposition`), builds,
trains and evaluates it (`train_evaluate`: study/trial_steps.py), and tells the study its
objective values; the loop around it is study/loop.py (`search_loop`). This module is the
facade: the constructor, seed 003's functions settable after it, the study opened on first use.
Running the same search again continues the study up to `max_trials` in total.

Several workers (processes, machines) may run the same search on one study at once
(study/claims.py). A running trial beats a heartbeat; one whose worker died is failed and its
architecture queued again by the next worker that looks (study/lost_trials.py). Ctrl-C or
SIGTERM ends the running trial as interrupted and queues its architecture again too. How each
trial ends, and which failures cost budget, is study/outcomes.py; screening is
study/screening.py. `max_consecutive_failures` trained attempts failing in a row (repeats and
ruled-out architectures between them do not break the row) stop the search, and a search that
ends with no trial trained and some failed stops too: `SearchStopped`, the last reason.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import warnings
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from torch import nn

from autodistill.advisors import make_advisor
from autodistill.config.loader import load_search_config
from autodistill.config.schema import EarlyStoppingSection
from autodistill.errors import ConfigError, InvalidArchitecture
from autodistill.evaluation.latency import LatencySpec
from autodistill.objectives import (
    ACCURACY,
    LATENCY,
    LATENCY_P90,
    PARAMS,
    SIZE,
    objectives_for,
)
from autodistill.paths import check_name
from autodistill.space import Architecture, SearchSpace
from autodistill.study import loop, lost_trials, trial_steps
from autodistill.study.claims import Claims
from autodistill.study.outcomes import Outcome, SearchStopped, ending_interrupted
from autodistill.study.pareto import pareto_front
from autodistill.study.protocol import FunctionTask, Task
from autodistill.study.record import StudyRecord, TrialRecord, enqueue, write
from autodistill.study.storage import default_storage_url, open_storage, open_study

log = logging.getLogger(__name__)

ModelBuilder = Callable[[Mapping[str, Any]], nn.Module]

DEFAULT_OUTPUT_DIR = "runs/autodistillation"
DEFAULT_STUDY_NAME = "autodistillation"
COST_METRICS = (LATENCY, LATENCY_P90, PARAMS, SIZE)  # measured by the search when eval_func gives none


class AutoDistillation:
    """The search for one study: `task` (a `Task`, or seed 003's model builder with its functions
    as keywords or set as `agent.train_func` / `agent.eval_func`) and `config`; see the module
    docstring.

    `config`: seed 003's `autodistillation_config` dict (or its `search` part), a YAML path, a
    `SearchSection` or an `AutoDistillationSection` (config/loader.py `load_search_config`; a bad
    one is one `ConfigError`). Unset keywords default from it: `output_dir` is the file's
    `output_dir`, else `runs/autodistillation`; `study_name` is `search.study_name`, else
    `model.name`, else `autodistillation`; `storage_url` is `search.storage`, else
    `sqlite:///<output_dir>/study.db`; `early_stopping` is the section's. The study is opened
    at once when the task is complete (a `Task`, or both functions given as keywords), else on
    first use (`search_loop()`, `agent.study`), so seed 003's order of calls works."""

    def __init__(self, task: Task | ModelBuilder, config: Any, *, storage_url: str | None = None,
                 study_name: str | None = None, output_dir: str | Path | None = None,
                 early_stopping: EarlyStoppingSection | None = None,
                 study_record: StudyRecord | None = None, progress: bool = True,
                 save_students: bool = True, **functions: Any) -> None:
        if isinstance(task, Task) and functions:
            raise ConfigError(f"give a Task or a model builder with functions, not both: {sorted(functions)}")
        if not isinstance(task, Task) and not callable(task):
            raise ConfigError(f"AutoDistillation's first argument is a Task or a model_builder(architecture) "
                              f"function, got {type(task).__name__}")
        loaded = load_search_config(config)
        self.config = config = loaded.search
        self.early_stopping = early_stopping if early_stopping is not None else (
            loaded.training.early_stopping if loaded.training is not None else None)
        self.save_students = save_students  # False: proxy trials score a sliced supernet, keep nothing
        self.output_dir = Path(output_dir if output_dir is not None else loaded.output_dir or DEFAULT_OUTPUT_DIR)
        self.study_name = check_name(study_name or config.study_name or loaded.name or DEFAULT_STUDY_NAME,
                                     key="study_name", fix="give AutoDistillation(study_name=...)")
        self.storage_url = storage_url or config.storage or default_storage_url(self.output_dir)
        self.search_space = SearchSpace.from_mapping(config.search_space, source="search.search_space")
        self.objectives = objectives_for(config.metrics, config.higher_is_better)
        self.advisor = self._advisor(config.seed)
        self._model_builder = None if isinstance(task, Task) else task
        self._functions = dict(functions)
        if self._model_builder is not None and loaded.training is not None and "latency" not in functions:
            latency = loaded.training.evaluation.latency
            self._functions["latency"] = LatencySpec(
                batch_size=latency.batch_size, sequence_length=latency.sequence_length or LatencySpec.sequence_length,
                warmup=latency.warmup, repeats=latency.repeats, threads=latency.threads, device=latency.device)
        self._task: Task | None = self._checked(task) if isinstance(task, Task) else None
        self._validity: dict[str, bool] = {}  # architecture key -> whether the task can build it
        self._study: optuna.Study | None = None
        self._study_record = study_record or StudyRecord()
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._joined = False
        # an unexplored architecture for this worker's next proposal (study/loop.py queue_unexplored)
        self.unexplored: Architecture | None = None
        self.progress = progress
        self._teacher_accuracy = self._teacher_latency_ms = None
        if self._task is not None or {"train_func", "eval_func"} <= self._functions.keys():
            self._open()

    # -- seed 003's functions: settable after construction (the FunctionTask is built again) --
    @property
    def train_func(self) -> Callable[..., nn.Module] | None:
        return self._functions.get("train_func")

    @train_func.setter
    def train_func(self, func: Callable[..., nn.Module]) -> None:
        self._set_function("train_func", func)

    @property
    def eval_func(self) -> Callable[[nn.Module], Mapping[str, Any]] | None:
        return self._functions.get("eval_func")

    @eval_func.setter
    def eval_func(self, func: Callable[[nn.Module], Mapping[str, Any]]) -> None:
        self._set_function("eval_func", func)

    def _set_function(self, name: str, func: Any) -> None:
        if self._model_builder is None:
            raise ConfigError(f"this search runs a Task ({type(self._task).__name__}); set {name} on the task, "
                              "or give AutoDistillation a model builder")
        if not callable(func):
            raise ConfigError(f"agent.{name} must be a function of the model, got {type(func).__name__}")
        self._functions[name] = func
        self._task = None  # the FunctionTask is built again, with the new function, on next use

    @property
    def task(self) -> Task:
        """The search's Task (seed 003's functions adapted by FunctionTask, built on first use)."""
        if self._task is None:
            missing = [name for name in ("train_func", "eval_func") if self._functions.get(name) is None]
            if missing:
                raise ConfigError(
                    f"AutoDistillation has no {' or '.join(missing)}: set agent.{missing[0]} = f (seed 003) "
                    f"or pass {missing[0]}=f before search_loop()")
            assert self._model_builder is not None  # a Task given is set at construction
            measured = [o.metric for o in self.objectives if o.metric in COST_METRICS]
            self._task = self._checked(FunctionTask(self._model_builder, measured=measured, **self._functions))
        return self._task

    def _checked(self, task: Task) -> Task:
        if self.early_stopping is not None and not task.stops_early:
            raise ConfigError(
                "early_stopping needs a checkpoint function (validation accuracy) and a train "
                "function that takes `callbacks` and passes them to the Distiller (the built-in one does)")
        if self.config.constraints and not task.measures_cost:
            raise ConfigError("search.constraints need a cost function (latency, params, size) "
                              "to screen architectures before training")
        return task

    # -- the study, opened once -------------------------------------------------------------
    def _open(self) -> optuna.Study:
        if self._study is not None:
            return self._study
        task, config = self.task, self.config
        self._storage = open_storage(self.storage_url, heartbeat_seconds=config.heartbeat_seconds,
                                     grace_seconds=config.grace_seconds,
                                     on_lost=functools.partial(lost_trials.retry_lost,
                                                               max_retries=config.max_retries))
        study = open_study(self._storage, study_name=self.study_name,
                           directions=[o.direction for o in self.objectives],
                           metric_names=[o.name for o in self.objectives], sampler=self.advisor)
        self._claims = Claims(study, self._storage, config)
        self._study_record.write(study)
        self._study = study
        self._teacher_figures(task)
        return study

    @property
    def study(self) -> optuna.Study:
        return self._open()

    @property
    def storage(self) -> optuna.storages.RDBStorage:
        self._open()
        return self._storage

    @property
    def claims(self) -> Claims:
        self._open()
        return self._claims

    @property
    def teacher_accuracy(self) -> float | None:
        self._open()
        return self._teacher_accuracy

    @property
    def teacher_latency_ms(self) -> float | None:
        self._open()
        return self._teacher_latency_ms

    def _teacher_figures(self, task: Task) -> None:
        """The study's teacher row: recorded once per study, measured by the task when it is not."""
        recorded = StudyRecord.of(self.study).teacher
        figures = task.teacher_figures(recorded)
        if figures is None:
            return
        if recorded is None:
            StudyRecord(teacher=dict(figures)).write(self.study)
        self._teacher_accuracy, self._teacher_latency_ms = ACCURACY.value(figures), LATENCY.value(figures)

    # -- seed 003's attributes ------------------------------------------------------------
    @property
    def search_result(self) -> list[FrozenTrial]:
        """Every trial of the study, in order."""
        return self.study.get_trials(deepcopy=False)

    @property
    def best_model_arch(self) -> list[Architecture]:
        """The architectures on the Pareto front."""
        return [Architecture.from_params(t.params) for t in pareto_front(self.study)]

    # -- seed 003's methods ---------------------------------------------------------------
    def model_arch_proposition(self) -> tuple[optuna.Trial, Architecture]:
        """Ask the advisor for the next architecture (an architecture queued again comes first)."""
        with warnings.catch_warnings():  # Optuna expects heartbeats under optimize(); we beat ourselves
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = self.study.ask()
        with self.interruptible(trial):
            lost_trials.beat(self.storage, trial)
            architecture = self.search_space.suggest(trial)
            write(trial, TrialRecord(architecture=architecture.to_dict(), architecture_key=architecture.key(),
                                     worker=self.worker))
        return trial, architecture

    def interruptible(self, trial: optuna.Trial) -> AbstractContextManager[None]:
        """Ctrl-C or SIGTERM inside the block ends `trial` as interrupted, its architecture queued again."""
        return ending_interrupted(self.study, trial, max_retries=self.config.max_retries,
                                  grace_seconds=self.config.grace_seconds)

    def train_evaluate(self, trial: optuna.Trial, architecture: Architecture) -> Outcome:
        """Build, train, evaluate and save one student, and tell the study how it went
        (study/trial_steps.py)."""
        return trial_steps.train_evaluate(self, trial, architecture)

    def search_loop(self) -> list[Architecture]:
        """Claim, train and evaluate trials until the study holds max_trials finished trials
        (with any number of other workers on the same study; study/loop.py)."""
        return loop.search_loop(self)

    # -- workers ---------------------------------------------------------------------------
    def propose(self, n_trials: int) -> tuple[optuna.Trial, Architecture]:
        """This worker's next trial, the study holding `n_trials` (joining it on the first)."""
        self._join(n_trials)
        if self.unexplored is not None:
            # queued here, under the claim lock, and taken by the ask below at once: a study whose
            # budget ends first is never left holding it
            choice, self.unexplored = self.unexplored, None
            if not self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
                enqueue(self.study, choice.to_dict(), TrialRecord(proposed_by="random (advisor stuck)"))
        return self.model_arch_proposition()

    def _join(self, n_trials: int) -> None:
        """A worker joining a study that has trials (another worker's, or an earlier run's)
        proposes from seed + their number: workers started with one seed never propose in step."""
        if self._joined:
            return
        self._joined = True
        if n_trials and self.config.seed is not None:
            self.advisor = self.study.sampler = self._advisor((self.config.seed + n_trials) % 2**32)

    def _advisor(self, seed: int | None) -> optuna.samplers.BaseSampler:
        return make_advisor(self.config.search_algorithm, space=self.search_space, seed=seed,
                            n_objectives=len(self.objectives), startup_trials=self.config.random_startup_trials)

    # -- helpers --------------------------------------------------------------------------
    def valid(self, architecture: Architecture) -> bool:
        """Whether the task can build `architecture` (a task with `check_architecture`, as the built-in
        one, applies the builder's rules, e.g. heads dividing the hidden size; other tasks: any)."""
        check = getattr(self.task, "check_architecture", None)
        if check is None:
            return True
        if architecture.key() not in self._validity:
            try:
                check(architecture)
                self._validity[architecture.key()] = True
            except InvalidArchitecture:
                self._validity[architecture.key()] = False
        return self._validity[architecture.key()]

    def valid_count(self) -> int | None:
        """How many architectures of a finite space the task can build (None: too large to list)."""
        return self.search_space.valid_count(self.valid)


__all__ = ["AutoDistillation", "ModelBuilder", "SearchStopped"]
