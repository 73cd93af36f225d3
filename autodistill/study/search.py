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
trains and evaluates it (`train_evaluate`), and tells the study its objective values.
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
import random
import socket
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from autodistill import interrupts
from autodistill.advisors import make_advisor
from autodistill.atomic_file import write_folder_atomically
from autodistill.config.loader import load_search_config
from autodistill.config.schema import EarlyStoppingSection
from autodistill.distill.callbacks import DistillationCallback
from autodistill.errors import ConfigError, DiskSpaceError, InvalidArchitecture
from autodistill.evaluation.latency import LatencySpec
from autodistill.objectives import (
    ACCURACY,
    LATENCY,
    LATENCY_P90,
    PARAMS,
    SIZE,
    objective_values,
    objectives_for,
    trial_result,
)
from autodistill.paths import check_name, inside
from autodistill.space import Architecture, SearchSpace
from autodistill.study import lost_trials, trials
from autodistill.study.claims import Claims
from autodistill.study.early_stopping import EarlyStopping, StopRule, TrialEarlyStopped
from autodistill.study.outcomes import (
    Outcome,
    SearchStopped,
    end_failed,
    end_interrupted,
    end_pruned,
    last_failure,
)
from autodistill.study.pareto import pareto_front
from autodistill.study.protocol import FunctionTask, Task, TrainedStudent
from autodistill.study.record import StudyRecord, TrialRecord, enqueue, write
from autodistill.study.screening import broken_budgets
from autodistill.study.storage import default_storage_url, open_storage, open_study
from autodistill.study.trial_checkpoints import ResumeRecorder, takes_folders, trial_folders

log = logging.getLogger(__name__)

ModelBuilder = Callable[[Mapping[str, Any]], nn.Module]

MAX_PROPOSALS_WITHOUT_TRAINING = 50
# proposals in a row that train nothing (repeats, impossible or screened architectures) before
# the next trial is drawn at random from the architectures not tried yet
ADVISOR_PATIENCE = 3
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
        try:
            lost_trials.beat(self.storage, trial)
            architecture = self.search_space.suggest(trial)
            write(trial, TrialRecord(architecture=architecture.to_dict(), architecture_key=architecture.key(),
                                     worker=self.worker))
        except KeyboardInterrupt:
            self._interrupted(trial)
            raise
        return trial, architecture

    def train_evaluate(self, trial: optuna.Trial, architecture: Architecture) -> Outcome:
        """Build, train, evaluate and save one student, and tell the study how it went."""
        if not self.config.allow_repeats:
            twin = TrialRecord.from_trial(trial).twin_of
            if twin is not None:
                ended = self.claims.wait_for(twin)
                if ended != TrialState.COMPLETE:
                    return end_pruned(self.study, trial, TrialRecord(), Outcome.REPEAT,
                                        f"waited for trial {twin} (the same architecture, another worker), "
                                        f"which ended {ended.name}: not trained twice")
            earlier = trials.trained_by_architecture(self.study).get(architecture.key())
            if earlier is not None:
                reused = TrialRecord.from_trial(earlier).reused(repeat_of=earlier.number)
                if earlier.state == TrialState.PRUNED:
                    return end_pruned(self.study, trial, reused, Outcome.REPEAT,
                                        f"repeats trial {earlier.number} ({dict(architecture)}), which was "
                                        "stopped early: not trained again")
                write(trial, reused)
                self.study.tell(trial, earlier.values)
                log.info("trial %d repeats trial %d (%s): reused its result", trial.number,
                         earlier.number, dict(architecture))
                return Outcome.REPEAT
        started = time.perf_counter()
        try:
            model = self.task.build(architecture)
        except InvalidArchitecture as exc:
            return end_pruned(self.study, trial, TrialRecord(invalid_reason=str(exc)), Outcome.INVALID,
                                f"invalid architecture {dict(architecture)}: {exc}")
        except KeyboardInterrupt:
            self._interrupted(trial)
            raise
        except Exception as exc:
            return end_failed(self.study, trial, exc)
        try:
            cost = self._cost(architecture, model)
            broken = broken_budgets(self.config.constraints, cost, self.teacher_latency_ms)
            if broken:
                return end_pruned(self.study, trial, TrialRecord(figures=cost, screened_reason=broken),
                                  Outcome.SCREENED, f"screened out before training: {broken}")
            student = self._train(trial, model, cost)
            train_seconds = time.perf_counter() - started
            result = trial_result(cost, self.task.evaluate(student.model))
            values = objective_values(self.objectives, result)
            saved = str(self._save(trial.number, student)) if self.save_students else None
            write(trial, TrialRecord(figures=result, train_seconds=train_seconds, student_path=saved))
        except TrialEarlyStopped as stop:
            return end_pruned(self.study, trial, TrialRecord(figures={**cost, ACCURACY.key: stop.accuracy},
                                                             pruned_reason=stop.reason,
                                                             train_seconds=time.perf_counter() - started),
                                Outcome.PRUNED, f"stopped early: {stop.reason}")
        except KeyboardInterrupt:
            self._interrupted(trial)
            raise
        except DiskSpaceError as exc:  # every trial would fail alike: the search stops with its one line;
            # the trial costs no budget (as an interrupted one) and its architecture is tried again
            write(trial, TrialRecord(interrupted=True))
            ended = self.study.tell(trial, state=TrialState.FAIL)
            log.info("trial %d stopped, its architecture queued again: %s", trial.number, exc)
            lost_trials.retry_architecture(self.study, ended, max_retries=self.config.max_retries)
            raise
        except Exception as exc:
            return end_failed(self.study, trial, exc)
        self.study.tell(trial, values)
        log.info("trial %d %s -> %s", trial.number, dict(architecture),
                 dict(zip((o.name for o in self.objectives), values)))
        return Outcome.TRAINED

    def search_loop(self) -> list[Architecture]:
        """Claim, train and evaluate trials until the study holds max_trials finished trials
        (with any number of other workers on the same study)."""
        from tqdm.auto import tqdm

        budget = self.config.max_trials
        failures = idle = 0
        with (tqdm(total=budget, initial=min(budget, trials.finished_count(self.study)), unit="trial",
                   desc="search", disable=not self.progress) as bar,
              interrupts.handled(sigterm=False)):  # Ctrl-C never lands inside a database call
            while (claimed := self.claims.next_trial(budget, propose=self._propose,
                                                     exhausted=self._space_exhausted)) is not None:
                trial, architecture = claimed
                try:
                    with lost_trials.TrialHeartbeat(self.storage, trial, self.config.heartbeat_seconds):
                        outcome = self.train_evaluate(trial, architecture)
                except KeyboardInterrupt:
                    self._interrupted(trial)
                    raise
                except optuna.exceptions.UpdateFinishedTrialError:
                    log.warning("trial %d was taken for lost by another worker (no heartbeat for %d s) and "
                                "its architecture queued again; its result here is dropped", trial.number,
                                self.config.grace_seconds)
                    continue
                if outcome is Outcome.FAILED:
                    failures += 1
                    if failures >= self.config.max_consecutive_failures:
                        raise SearchStopped(
                            f"{failures} trials failed in a row (max_consecutive_failures); the last "
                            f"one: {last_failure(self.study)}. Fix the cause and run the same command again: "
                            "completed trials are kept"
                        )
                elif outcome in (Outcome.TRAINED, Outcome.PRUNED):  # a repeat trains nothing: no reset
                    failures = 0
                idle = 0 if outcome in (Outcome.TRAINED, Outcome.PRUNED, Outcome.FAILED) else idle + 1
                # a repeat tells the advisor nothing new: the next trial is an unexplored architecture
                if outcome is Outcome.REPEAT or (idle and idle % ADVISOR_PATIENCE == 0):
                    self._queue_unexplored()
                if idle >= MAX_PROPOSALS_WITHOUT_TRAINING:
                    raise SearchStopped(
                        f"the advisor proposed {idle} architectures in a row that were repeats or "
                        "impossible; the search space may be exhausted or mostly invalid"
                    )
                bar.n = min(budget, trials.finished_count(self.study))
                bar.refresh()
        ended = self.study.get_trials(deepcopy=False)
        if not any(map(trials.trained, ended)) and any(map(trials.failed, ended)):
            spent = sum(map(trials.counts_toward_budget, ended)) >= budget
            raise SearchStopped(f"every trial of study {self.study.study_name!r} failed; the last one: "
                                f"{last_failure(self.study)}. Fix the cause and run the same command again"
                                + (f" with a larger --max-trials (these failures used all {budget})" if spent else ""))
        return self.best_model_arch

    # -- workers ---------------------------------------------------------------------------
    def _propose(self, n_trials: int) -> tuple[optuna.Trial, Architecture]:
        self._join(n_trials)
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
    def _train(self, trial: optuna.Trial, model: nn.Module, cost: Mapping[str, Any]) -> TrainedStudent:
        """The task's training, with early stopping's checkpoints when configured; a task whose
        `train` takes `folders` (the built-in one) checkpoints into the trial's folders, and a
        retry of a lost trial resumes from its checkpoint (study/trial_checkpoints.py)."""
        callbacks: list[DistillationCallback] = []
        if self.early_stopping is not None:
            curve: dict[str, float] = {}

            def record_checkpoint(step: int, accuracy: float) -> None:
                curve[str(step)] = accuracy
                write(trial, TrialRecord(accuracy_curve=dict(curve)))

            rule = StopRule(self.early_stopping, self.study, latency_ms=LATENCY.value(cost),
                            teacher_accuracy=self.teacher_accuracy)
            callbacks.append(EarlyStopping(evaluate=lambda: self.task.checkpoint_score(model),
                                           every=self.early_stopping.eval_every_steps, rule=rule,
                                           on_checkpoint=record_checkpoint))
        if not takes_folders(self.task):
            return self.task.train(model, callbacks=callbacks) if callbacks else self.task.train(model)
        folders = trial_folders(self.study, trial, self.output_dir, resume=self.config.resume_trials)
        try:
            student = self.task.train(model, callbacks=[*callbacks, ResumeRecorder(trial, folders)],
                                      folders=folders)  # type: ignore[call-arg]  # takes_folders
        except TrialEarlyStopped:
            folders.remove()
            raise
        folders.remove()
        return student

    def _cost(self, architecture: Architecture, model: nn.Module) -> dict[str, Any]:
        """Latency, parameters and size of the untrained student; measured once per architecture."""
        if not self.task.measures_cost:
            return {}
        known = trials.measured_cost(self.study, architecture.key())
        return known if known is not None else dict(self.task.cost(model))

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

    def _space_exhausted(self, ended: list[FrozenTrial]) -> bool:
        """Every valid architecture of a finite space has been trained, or ruled out before training."""
        if self.config.allow_repeats:  # trained again on purpose (e.g. to average out noise)
            return False
        listed = self.search_space.architectures()
        if listed is None:
            return False
        settled = trials.settled(ended)
        return all(a.key() in settled for a in listed if self.valid(a))

    def _queue_unexplored(self) -> None:
        """The advisor keeps proposing architectures already trained or ruled out: a model-based
        sampler learns nothing from a pruned trial, so a screened or impossible architecture
        stays its best guess, and a GP re-proposes points it has seen (a repeat is told the earlier
        result: nothing new). The next trial is then a random architecture (seeded by the study's
        seed and length) that the task can build and that is neither settled nor running; unless
        the queue already holds the next trial."""
        known = self.study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in known):
            return
        running = {TrialRecord.from_trial(t).architecture_key for t in known if t.state == TrialState.RUNNING}
        rng = random.Random(f"{self.config.seed}-{len(known)}")
        choice = self.search_space.sample(rng, avoid=trials.settled(known) | running, valid=self.valid)
        if choice is not None:
            log.info("the advisor proposed settled architectures; next: %s, drawn at random from the "
                     "unexplored valid ones", dict(choice))
            enqueue(self.study, choice.to_dict(), TrialRecord(proposed_by="random (advisor stuck)"))

    def _interrupted(self, trial: optuna.Trial) -> None:
        end_interrupted(self.study, trial, max_retries=self.config.max_retries,
                        grace_seconds=self.config.grace_seconds)

    def _save(self, number: int, student: TrainedStudent) -> Path:
        """Save into a temporary folder of this save's own, then rename: a kill never leaves a
        half-written student, and nothing this trial did not write is deleted or overwritten."""
        # per study: several studies may share an output directory (and its teacher and cache)
        final = inside(self.output_dir, "trials", self.study.study_name, f"{number:05d}", key="study name")
        if final.exists():  # not this trial's (trial numbers are unique): another study's, or the user's
            raise FileExistsError(f"{final} exists and was not written by this trial; it is left as it is")
        return write_folder_atomically(final, lambda tmp: self.task.save(student, tmp))

