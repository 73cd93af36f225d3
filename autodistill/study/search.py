"""`AutoDistillation`: the search loop of seed 003, on an Optuna study.

    agent = AutoDistillation(task, search_section, storage_url="sqlite:///runs/x/study.db",
                             study_name="x", output_dir="runs/x")
    best = agent.search_loop()        # the Pareto-best architectures

`task` is a `Task` (study/protocol.py: build, cost, train, evaluate, save; the built-in
`DistillationTask` is one), or seed 003's model builder with `train_func=`, `eval_func=` (and
optionally `save_func`, `cost_func`, `checkpoint_func`), which `FunctionTask` adapts.

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
import shutil
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
from autodistill.atomic_file import remove_dead_temporaries, temporary_path
from autodistill.config.schema import EarlyStoppingSection, SearchSection
from autodistill.errors import ConfigError, DiskSpaceError, InvalidArchitecture
from autodistill.paths import inside
from autodistill.space import Architecture, SearchSpace
from autodistill.study import lost_trials
from autodistill.study import trials as attrs
from autodistill.study.claims import Claims
from autodistill.study.early_stopping import EarlyStopping, StopRule, TrialEarlyStopped
from autodistill.study.objectives import ACCURACY, LATENCY, objective_values, objectives_for, trial_result
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
from autodistill.study.screening import broken_budgets
from autodistill.study.storage import open_storage, open_study

log = logging.getLogger(__name__)

ModelBuilder = Callable[[Mapping[str, Any]], nn.Module]

MAX_PROPOSALS_WITHOUT_TRAINING = 50
# proposals in a row that train nothing (repeats, impossible or screened architectures) before
# the next trial is drawn at random from the architectures not tried yet
ADVISOR_PATIENCE = 3


class AutoDistillation:
    """The search for one study: `task` (a `Task`, or seed 003's model builder with its functions
    as keywords) and `config` (the search section); see the module docstring."""

    def __init__(self, task: Task | ModelBuilder, config: SearchSection, *, storage_url: str, study_name: str,
                 output_dir: str | Path, early_stopping: EarlyStoppingSection | None = None,
                 study_attrs: Mapping[str, Any] | None = None, progress: bool = True,
                 save_students: bool = True, **functions: Any) -> None:
        self.task: Task = task if isinstance(task, Task) else FunctionTask(task, **functions)
        if isinstance(task, Task) and functions:
            raise ConfigError(f"give a Task or a model builder with functions, not both: {sorted(functions)}")
        self.config, self.early_stopping = config, early_stopping
        if early_stopping is not None and not self.task.stops_early:
            raise ConfigError(
                "early_stopping needs a checkpoint function (validation accuracy) and a train "
                "function that takes `callbacks` and passes them to the Distiller (the built-in one does)")
        if config.constraints and not self.task.measures_cost:
            raise ConfigError("search.constraints need a cost function (latency, params, size) "
                              "to screen architectures before training")
        self.save_students = save_students  # False: proxy trials score a sliced supernet, keep nothing
        self.output_dir = Path(output_dir)
        self.search_space = SearchSpace.from_mapping(config.search_space, source="search.search_space")
        self.objectives = objectives_for(config.metrics, config.higher_is_better)
        self.advisor = self._advisor(config.seed)
        self.storage = open_storage(storage_url, heartbeat_seconds=config.heartbeat_seconds,
                                    grace_seconds=config.grace_seconds,
                                    on_lost=functools.partial(lost_trials.retry_lost,
                                                              max_retries=config.max_retries))
        self.study = open_study(self.storage, study_name=study_name,
                                directions=[o.direction for o in self.objectives],
                                metric_names=[o.name for o in self.objectives], sampler=self.advisor)
        self.claims = Claims(self.study, self.storage, config)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._joined = False
        for key, value in (study_attrs or {}).items():
            self.study.set_user_attr(key, attrs.json_safe(value))
        self.progress = progress
        self.teacher_accuracy = self.teacher_latency_ms = None
        self._teacher_figures()

    def _teacher_figures(self) -> None:
        """The study's teacher row: recorded once per study, measured by the task when it is not."""
        recorded = self.study.user_attrs.get(attrs.TEACHER)
        figures = self.task.teacher_figures(recorded)
        if figures is None:
            return
        if recorded is None:
            self.study.set_user_attr(attrs.TEACHER, attrs.json_safe(dict(figures)))
        self.teacher_accuracy, self.teacher_latency_ms = ACCURACY.value(figures), LATENCY.value(figures)

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
            attrs.record(trial, {attrs.ARCHITECTURE: architecture.to_dict(),
                                 attrs.ARCHITECTURE_KEY: architecture.key(), attrs.WORKER: self.worker})
        except KeyboardInterrupt:
            self._interrupted(trial)
            raise
        return trial, architecture

    def train_evaluate(self, trial: optuna.Trial, architecture: Architecture) -> Outcome:
        """Build, train, evaluate and save one student, and tell the study how it went."""
        if not self.config.allow_repeats:
            twin = trial.user_attrs.get(attrs.TWIN_OF)
            if twin is not None:
                ended = self.claims.wait_for(twin)
                if ended != TrialState.COMPLETE:
                    return end_pruned(self.study, trial, {}, Outcome.REPEAT,
                                        f"waited for trial {twin} (the same architecture, another worker), "
                                        f"which ended {ended.name}: not trained twice")
            earlier = attrs.trained_by_architecture(self.study).get(architecture.key())
            if earlier is not None:
                reused = {attrs.REPEAT_OF: earlier.number,
                          **{k: v for k, v in earlier.user_attrs.items() if k not in attrs.OWN_KEYS}}
                if earlier.state == TrialState.PRUNED:
                    return end_pruned(self.study, trial, reused, Outcome.REPEAT,
                                        f"repeats trial {earlier.number} ({dict(architecture)}), which was "
                                        "stopped early: not trained again")
                attrs.record(trial, reused)
                self.study.tell(trial, earlier.values)
                log.info("trial %d repeats trial %d (%s): reused its result", trial.number,
                         earlier.number, dict(architecture))
                return Outcome.REPEAT
        started = time.perf_counter()
        try:
            model = self.task.build(architecture)
        except InvalidArchitecture as exc:
            return end_pruned(self.study, trial, {attrs.INVALID_REASON: str(exc)}, Outcome.INVALID,
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
                return end_pruned(self.study, trial, {**cost, attrs.SCREENED_REASON: broken}, Outcome.SCREENED,
                                    f"screened out before training: {broken}")
            student = self._train(trial, model, cost)
            train_seconds = time.perf_counter() - started
            result = trial_result(cost, self.task.evaluate(student.model))
            values = objective_values(self.objectives, result)
            saved = {attrs.STUDENT_PATH: str(self._save(trial.number, student))} if self.save_students else {}
            attrs.record(trial, {**result, "train_seconds": train_seconds, **saved})
        except TrialEarlyStopped as stop:
            return end_pruned(self.study, trial, {**cost, "accuracy": stop.accuracy, attrs.PRUNED_REASON: stop.reason,
                                        "train_seconds": time.perf_counter() - started},
                                Outcome.PRUNED, f"stopped early: {stop.reason}")
        except KeyboardInterrupt:
            self._interrupted(trial)
            raise
        except DiskSpaceError as exc:  # every trial would fail alike: the search stops with its one line;
            # the trial costs no budget (as an interrupted one) and its architecture is tried again
            attrs.record(trial, {attrs.INTERRUPTED: True})
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
        with (tqdm(total=budget, initial=min(budget, attrs.finished_count(self.study)), unit="trial",
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
                if idle and idle % ADVISOR_PATIENCE == 0:
                    self._queue_unexplored()
                if idle >= MAX_PROPOSALS_WITHOUT_TRAINING:
                    raise SearchStopped(
                        f"the advisor proposed {idle} architectures in a row that were repeats or "
                        "impossible; the search space may be exhausted or mostly invalid"
                    )
                bar.n = min(budget, attrs.finished_count(self.study))
                bar.refresh()
        trials = self.study.get_trials(deepcopy=False)
        if not any(map(attrs.trained, trials)) and any(map(attrs.failed, trials)):
            spent = sum(map(attrs.counts_toward_budget, trials)) >= budget
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
        """The task's training, with early stopping's checkpoints when configured."""
        if self.early_stopping is None:
            return self.task.train(model)
        curve: dict[str, float] = {}

        def record_checkpoint(step: int, accuracy: float) -> None:
            curve[str(step)] = accuracy
            trial.set_user_attr(attrs.ACCURACY_CURVE, dict(curve))

        rule = StopRule(self.early_stopping, self.study, latency_ms=LATENCY.value(cost),
                        teacher_accuracy=self.teacher_accuracy)
        callback = EarlyStopping(evaluate=lambda: self.task.checkpoint_score(model),
                                 every=self.early_stopping.eval_every_steps, rule=rule,
                                 on_checkpoint=record_checkpoint)
        return self.task.train(model, callbacks=[callback])

    def _cost(self, architecture: Architecture, model: nn.Module) -> dict[str, Any]:
        """Latency, parameters and size of the untrained student; measured once per architecture."""
        if not self.task.measures_cost:
            return {}
        known = attrs.measured_cost(self.study, architecture.key())
        return known if known is not None else dict(self.task.cost(model))

    def _space_exhausted(self, trials: list[FrozenTrial]) -> bool:
        """Every architecture of a finite space has been trained, or ruled out before training."""
        if self.config.allow_repeats:  # trained again on purpose (e.g. to average out noise)
            return False
        size = self.search_space.size()
        return size is not None and len(_settled(trials)) >= size

    def _queue_unexplored(self) -> None:
        """The advisor keeps proposing architectures already trained or ruled out: a model-based
        sampler learns nothing from a pruned trial, so a screened or impossible architecture
        stays its best guess. The next trial is then a random architecture (seeded by the
        study's seed and length) that is neither settled nor running."""
        trials = self.study.get_trials(deepcopy=False)
        running = {t.user_attrs.get(attrs.ARCHITECTURE_KEY) for t in trials if t.state == TrialState.RUNNING}
        rng = random.Random(f"{self.config.seed}-{len(trials)}")
        choice = self.search_space.sample(rng, avoid=_settled(trials) | running)
        if choice is not None:
            log.info("the advisor proposed %d settled architectures in a row; next: %s, drawn at random "
                     "from the unexplored ones", ADVISOR_PATIENCE, dict(choice))
            self.study.enqueue_trial(choice.to_dict(), user_attrs={attrs.PROPOSED_BY: "random (advisor stuck)"})

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
        remove_dead_temporaries(final.parent)  # the half-written students of killed workers
        tmp = temporary_path(final)  # this process's and thread's own name: nobody else's folder
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            self.task.save(student, tmp)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final


def _settled(trials: list[FrozenTrial]) -> set[str]:
    """Keys of the architectures trained (completed or stopped early) or ruled out before training."""
    return {t.user_attrs[attrs.ARCHITECTURE_KEY] for t in trials
            if attrs.ARCHITECTURE_KEY in t.user_attrs and (attrs.trained(t) or attrs.ruled_out(t))}
