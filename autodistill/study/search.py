"""`AutoDistillation`: the search loop of seed 003, on an Optuna study.

    agent = AutoDistillation(model_builder, search_section, train_func=..., eval_func=...,
                             storage_url="sqlite:///runs/x/study.db", study_name="x",
                             output_dir="runs/x")
    best = agent.search_loop()        # the Pareto-best architectures

Each iteration asks the advisor for an architecture (`model_arch_proposition`), builds,
trains and evaluates it (`train_evaluate`), and tells the study its objective values.
Running the same search again continues the study up to `max_trials` in total.

Several workers (processes, machines) may run the same search on one study at once: each
claims its next trial under a lock shared through the storage (study/worker_lock.py), and
starts one only while finished plus running trials stay below `max_trials`, so the study
ends with exactly `max_trials` finished trials. A proposal of an architecture another
worker is training waits for that trial and reuses its result (unless `allow_repeats`).
A running trial beats a heartbeat; one whose worker died is failed and its architecture
queued again by the next worker that looks (study/lost_trials.py). Ctrl-C or SIGTERM
ends the running trial as interrupted and queues its architecture again too.

A trial that raises fails with its reason. One that a rerun would fail again in the same way
(a config, shape or mapping error, a TypeError or ValueError in a user function:
`rerun_fails_again`) costs no `max_trials`, so the budget is whole once the cause is fixed;
others (out of memory, a NaN loss, an OSError) count. Either way `max_consecutive_failures`
trained attempts failing in a row (repeats and ruled-out architectures between them do not
break the row) stop the search, and a search that ends with no trial trained and some failed
stops too: `SearchStopped`, exit 2, the last reason.
"""

from __future__ import annotations

import enum
import functools
import inspect
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
from autodistill.errors import (
    AutodistillError,
    ConfigError,
    DiskSpaceError,
    InvalidArchitecture,
    NonFiniteLossError,
)
from autodistill.paths import inside
from autodistill.space import Architecture, SearchSpace
from autodistill.study import lost_trials
from autodistill.study import trials as attrs
from autodistill.study.early_stopping import EarlyStopping, StopRule, TrialEarlyStopped
from autodistill.study.objectives import LATENCY, PARAMS, SIZE, objective_values, objectives_for, trial_result
from autodistill.study.pareto import pareto_front, speedup
from autodistill.study.storage import open_storage, open_study
from autodistill.study.worker_lock import claim_lock

log = logging.getLogger(__name__)

ModelBuilder = Callable[[Mapping[str, Any]], nn.Module]
TrainFunc = Callable[[nn.Module], nn.Module]
EvalFunc = Callable[[nn.Module], Mapping[str, float]]
SaveFunc = Callable[[nn.Module, Path], None]
CostFunc = Callable[[nn.Module], Mapping[str, float]]

# constraint name -> the figure it bounds (the one the objectives and the table show)
CONSTRAINTS = {"latency_ms": LATENCY, "params": PARAMS, "size_mb": SIZE}

MAX_PROPOSALS_WITHOUT_TRAINING = 50
# proposals in a row that train nothing (repeats, impossible or screened architectures) before
# the next trial is drawn at random from the architectures not tried yet
ADVISOR_PATIENCE = 3
POLL_SECONDS = 5  # how often a waiting worker looks at the study again (at most heartbeat_seconds)


class Outcome(enum.Enum):
    TRAINED = "trained"
    REPEAT = "repeat"
    INVALID = "invalid"
    SCREENED = "screened"
    PRUNED = "pruned"
    FAILED = "failed"


class SearchStopped(AutodistillError):
    """The search ended before max_trials for a reason the user must see."""


def _default_save(model: nn.Module, directory: Path) -> None:
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(directory)
    else:
        import torch

        torch.save(model.state_dict(), directory / "student.pt")


class AutoDistillation:
    def __init__(self, model_builder: ModelBuilder, config: SearchSection, *, train_func: TrainFunc,
                 eval_func: EvalFunc, storage_url: str, study_name: str, output_dir: str | Path,
                 save_func: SaveFunc | None = None, cost_func: CostFunc | None = None,
                 early_stopping: EarlyStoppingSection | None = None,
                 checkpoint_func: Callable[[nn.Module], float] | None = None,
                 teacher_accuracy: float | None = None, teacher_latency_ms: float | None = None,
                 study_attrs: Mapping[str, Any] | None = None, progress: bool = True,
                 save_students: bool = True) -> None:
        self.config = config
        self.cost_func = cost_func
        self.early_stopping, self.checkpoint_func = early_stopping, checkpoint_func
        self.teacher_accuracy, self.teacher_latency_ms = teacher_accuracy, teacher_latency_ms
        if early_stopping is not None and (
                checkpoint_func is None or "callbacks" not in inspect.signature(train_func).parameters):
            raise ConfigError(
                "early_stopping needs a checkpoint function (validation accuracy) and a train "
                "function that takes `callbacks` and passes them to the Distiller (the built-in one does)")
        if config.constraints and cost_func is None:
            raise ConfigError("search.constraints need a cost function (latency, params, size) "
                              "to screen architectures before training")
        self.model_builder, self.train_func, self.eval_func = model_builder, train_func, eval_func
        self.save_func = save_func or _default_save
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
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._joined = False
        for key, value in (study_attrs or {}).items():
            self.study.set_user_attr(key, attrs.json_safe(value))
        self.progress = progress

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
                ended = self._wait_for(twin)
                if ended != TrialState.COMPLETE:
                    return self._pruned(trial, {}, Outcome.REPEAT,
                                        f"waited for trial {twin} (the same architecture, another worker), "
                                        f"which ended {ended.name}: not trained twice")
            earlier = attrs.trained_by_architecture(self.study).get(architecture.key())
            if earlier is not None:
                reused = {attrs.REPEAT_OF: earlier.number,
                          **{k: v for k, v in earlier.user_attrs.items() if k not in attrs.OWN_KEYS}}
                if earlier.state == TrialState.PRUNED:
                    return self._pruned(trial, reused, Outcome.REPEAT,
                                        f"repeats trial {earlier.number} ({dict(architecture)}), which was "
                                        "stopped early: not trained again")
                attrs.record(trial, reused)
                self.study.tell(trial, earlier.values)
                log.info("trial %d repeats trial %d (%s): reused its result", trial.number,
                         earlier.number, dict(architecture))
                return Outcome.REPEAT
        started = time.perf_counter()
        try:
            model = self.model_builder(architecture)
        except InvalidArchitecture as exc:
            return self._pruned(trial, {attrs.INVALID_REASON: str(exc)}, Outcome.INVALID,
                                f"invalid architecture {dict(architecture)}: {exc}")
        except KeyboardInterrupt:
            self._interrupted(trial)
            raise
        except Exception as exc:
            return self._failed(trial, exc)
        try:
            cost = self._cost(architecture, model)
            broken = self._broken_budgets(cost)
            if broken:
                return self._pruned(trial, {**cost, attrs.SCREENED_REASON: broken}, Outcome.SCREENED,
                                    f"screened out before training: {broken}")
            model = self._train(trial, model, cost)
            train_seconds = time.perf_counter() - started
            result = trial_result(cost, self.eval_func(model))
            values = objective_values(self.objectives, result)
            saved = {attrs.STUDENT_PATH: str(self._save(trial.number, model))} if self.save_students else {}
            attrs.record(trial, {**result, "train_seconds": train_seconds, **saved})
        except TrialEarlyStopped as stop:
            return self._pruned(trial, {**cost, "accuracy": stop.accuracy, attrs.PRUNED_REASON: stop.reason,
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
            return self._failed(trial, exc)
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
            while (claimed := self._claim(budget)) is not None:
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
                            f"one: {self._last_failure()}. Fix the cause and run the same command again: "
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
                                f"{self._last_failure()}. Fix the cause and run the same command again"
                                + (f" with a larger --max-trials (these failures used all {budget})" if spent else ""))
        return self.best_model_arch

    # -- workers ---------------------------------------------------------------------------
    def _claim(self, budget: int) -> tuple[optuna.Trial, Architecture] | None:
        """This worker's next trial, or None when the study is done.

        Under the workers' lock: trials whose worker is gone are failed and queued again; a
        trial starts only while finished plus running trials stay below `budget` (else this
        worker waits: a running trial finishes, or its worker is found gone after the grace
        period); a proposal of an architecture another worker is training becomes its twin.
        """
        announced = False
        while True:
            with claim_lock(self.storage, self.study.study_name):
                lost_trials.fail_lost_trials(self.study, grace_seconds=self.config.grace_seconds,
                                             max_retries=self.config.max_retries)
                trials = self.study.get_trials(deepcopy=False)
                finished = sum(map(attrs.counts_toward_budget, trials))
                if finished >= budget:
                    return None
                if self._space_exhausted(trials):
                    log.warning("every architecture of the search space has been trained; stopping")
                    return None
                running = [t for t in trials if attrs.holds_budget(t)]
                if finished + len(running) < budget:
                    self._join(len(trials))
                    trial, architecture = self.model_arch_proposition()
                    twin = next((t.number for t in running
                                 if t.user_attrs.get(attrs.ARCHITECTURE_KEY) == architecture.key()), None)
                    if twin is not None and not self.config.allow_repeats:
                        attrs.record(trial, {attrs.TWIN_OF: twin})
                    return trial, architecture
            if not announced:
                log.info("the rest of max_trials is held by %d running trial(s) of other workers; "
                         "waiting for them", len(running))
                announced = True
            time.sleep(self._poll_seconds)

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

    def _wait_for(self, number: int) -> TrialState:
        """How another worker's trial ended, once it has (failing it if its worker is gone)."""
        log.info("waiting for trial %d of another worker (the same architecture)", number)
        while True:
            lost_trials.fail_lost_trials(self.study, grace_seconds=self.config.grace_seconds,
                                         max_retries=self.config.max_retries)
            state = self.study.get_trials(deepcopy=False)[number].state
            if state.is_finished():
                return state
            time.sleep(self._poll_seconds)

    @property
    def _poll_seconds(self) -> float:
        return min(POLL_SECONDS, self.config.heartbeat_seconds)

    # -- helpers --------------------------------------------------------------------------
    def _train(self, trial: optuna.Trial, model: nn.Module, cost: Mapping[str, Any]) -> nn.Module:
        """The train function, with early stopping's checkpoints when configured."""
        if self.early_stopping is None:
            return self.train_func(model)
        assert self.checkpoint_func is not None
        curve: dict[str, float] = {}
        checkpoint = self.checkpoint_func

        def record_checkpoint(step: int, accuracy: float) -> None:
            curve[str(step)] = accuracy
            trial.set_user_attr(attrs.ACCURACY_CURVE, dict(curve))

        rule = StopRule(self.early_stopping, self.study, latency_ms=LATENCY.value(cost),
                        teacher_accuracy=self.teacher_accuracy)
        callback = EarlyStopping(evaluate=lambda: checkpoint(model), every=self.early_stopping.eval_every_steps,
                                 rule=rule, on_checkpoint=record_checkpoint)
        return self.train_func(model, callbacks=[callback])  # type: ignore[call-arg]

    def _cost(self, architecture: Architecture, model: nn.Module) -> dict[str, Any]:
        """Latency, parameters and size of the untrained student; measured once per architecture."""
        if self.cost_func is None:
            return {}
        known = attrs.measured_cost(self.study, architecture.key())
        return known if known is not None else dict(self.cost_func(model))

    def _broken_budgets(self, cost: Mapping[str, Any]) -> str:
        limits = dict(self.config.constraints)
        least = limits.pop("min_speedup", None)
        broken = self._over(cost, limits)
        if least is not None:
            # the cost function's paired speed-up where it measured one, else the study's teacher
            # latency over the student's: the figure the table shows
            speed = speedup(cost, {LATENCY.key: self.teacher_latency_ms})
            if speed is None and self.teacher_latency_ms is None:
                raise ConfigError("search.constraints.min_speedup needs the teacher's latency")
            latency = LATENCY.value(cost)
            if speed is not None and speed < least:
                broken.insert(0, f"speed-up {speed:.3g}x < {least:.3g}x (latency {latency:.4g} ms, "
                                 f"teacher {latency * speed:.4g} ms)")
        return "; ".join(broken)

    @staticmethod
    def _over(cost: Mapping[str, Any], limits: Mapping[str, float]) -> list[str]:
        values = {name: CONSTRAINTS[name].value(cost) for name in limits}
        return [f"{name} {values[name]:.4g} > {limit:.4g}" for name, limit in limits.items()
                if values[name] is not None and values[name] > limit]

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

    def _pruned(self, trial: optuna.Trial, record: Mapping[str, Any], outcome: Outcome,
                message: str) -> Outcome:
        """Record why, and end the trial as pruned (Optuna's state for 'stopped on purpose')."""
        attrs.record(trial, record)
        self.study.tell(trial, state=TrialState.PRUNED)
        log.info("trial %d %s", trial.number, message)
        return outcome

    def _failed(self, trial: optuna.Trial, exc: BaseException) -> Outcome:
        reason = f"{type(exc).__name__}: {str(exc) or '(no message)'}"[:2000]
        attrs.record(trial, {attrs.FAILURE_REASON: reason,
                             **({attrs.RERUN_FAILS_AGAIN: True} if rerun_fails_again(exc) else {})})
        self.study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d failed: %s", trial.number, reason)
        return Outcome.FAILED

    def _last_failure(self) -> str | None:
        failed = [t for t in self.study.get_trials(deepcopy=False) if attrs.failed(t)]
        return failed[-1].user_attrs[attrs.FAILURE_REASON] if failed else None

    def _interrupted(self, trial: optuna.Trial) -> None:
        """Ctrl-C or SIGTERM: the trial ends failed, marked interrupted (it costs no budget), and
        its architecture is queued again for the next run."""
        try:
            attrs.record(trial, {attrs.INTERRUPTED: True})
            ended = self.study.tell(trial, state=TrialState.FAIL)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            return  # it had ended already (recorded by an inner handler, or just told)
        except optuna.exceptions.OptunaError as exc:
            log.warning("trial %d interrupted and not recorded (%s); it is taken for lost after %d s "
                        "and tried again", trial.number, exc, self.config.grace_seconds)
            return
        log.warning("trial %d interrupted; its architecture is queued again for the next run", trial.number)
        lost_trials.retry_architecture(self.study, ended, max_retries=self.config.max_retries)

    def _save(self, number: int, model: nn.Module) -> Path:
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
            self.save_func(model, tmp)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final


# errors of the setup, not of the moment: the same code and config raise them again on a rerun
SETUP_ERRORS = (TypeError, ValueError, AttributeError, LookupError, NameError, NotImplementedError,
                ImportError, AssertionError)


def rerun_fails_again(exc: BaseException) -> bool:
    """Whether a trial that raised `exc` would raise it again when run again as it is: a config,
    shape or mapping error (ConfigError, CaptureError, MappingError) or a programming error in a
    user function (`SETUP_ERRORS`). Not so: running out of memory, an OSError, a RuntimeError
    (CUDA), a loss that became NaN (that architecture's training): those are the trial's result."""
    if isinstance(exc, AutodistillError):
        return not isinstance(exc, NonFiniteLossError)
    return isinstance(exc, SETUP_ERRORS)


def _settled(trials: list[FrozenTrial]) -> set[str]:
    """Keys of the architectures trained (completed or stopped early) or ruled out before training."""
    return {t.user_attrs[attrs.ARCHITECTURE_KEY] for t in trials
            if attrs.ARCHITECTURE_KEY in t.user_attrs and (attrs.trained(t) or attrs.ruled_out(t))}
