"""The search loop (seed 003's `search_loop`): claim a trial, run it, count what it cost, and
stop at `max_trials` finished trials (with any number of workers on the study), when the space
is exhausted, or for a reason the user must see (`SearchStopped`: `max_consecutive_failures`
trained attempts failing in a row, the advisor proposing only settled architectures, every
trial failed). An advisor stuck on settled architectures gets an unexplored one queued.
"""

from __future__ import annotations

import functools
import logging
import random
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodistill import interrupts
from autodistill.space import Architecture
from autodistill.study import lost_trials, trials
from autodistill.study.outcomes import Outcome, SearchStopped, last_failure
from autodistill.study.record import TrialRecord

if TYPE_CHECKING:
    from autodistill.study.search import AutoDistillation

log = logging.getLogger(__name__)

MAX_PROPOSALS_WITHOUT_TRAINING = 50
# proposals in a row that train nothing (repeats, impossible or screened architectures) before
# the next trial is drawn at random from the architectures not tried yet
ADVISOR_PATIENCE = 3


def search_loop(agent: AutoDistillation) -> list[Architecture]:
    """Claim, train and evaluate trials until the study holds max_trials finished trials
    (with any number of other workers on the same study)."""
    from tqdm.auto import tqdm

    budget = agent.config.max_trials
    failures = idle = 0
    with (tqdm(total=budget, initial=min(budget, trials.finished_count(agent.study)), unit="trial",
               desc="search", disable=not agent.progress) as bar,
          interrupts.handled(sigterm=False)):  # Ctrl-C never lands inside a database call
        while (claimed := agent.claims.next_trial(budget, propose=agent.propose,
                                                  exhausted=functools.partial(space_exhausted, agent))) is not None:
            trial, architecture = claimed
            try:
                with (agent.interruptible(trial),
                      lost_trials.TrialHeartbeat(agent.storage, trial, agent.config.heartbeat_seconds)):
                    outcome = agent.train_evaluate(trial, architecture)
            except optuna.exceptions.UpdateFinishedTrialError:
                log.warning("trial %d was taken for lost by another worker (no heartbeat for %d s) and "
                            "its architecture queued again; its result here is dropped", trial.number,
                            agent.config.grace_seconds)
                continue
            if outcome is Outcome.FAILED:
                failures += 1
                if failures >= agent.config.max_consecutive_failures:
                    raise SearchStopped(
                        f"{failures} trials failed in a row (max_consecutive_failures); the last "
                        f"one: {last_failure(agent.study)}. Fix the cause and run the same command again: "
                        "completed trials are kept"
                    )
            elif outcome in (Outcome.TRAINED, Outcome.PRUNED):  # a repeat trains nothing: no reset
                failures = 0
            idle = 0 if outcome in (Outcome.TRAINED, Outcome.PRUNED, Outcome.FAILED) else idle + 1
            # a repeat tells the advisor nothing new: the next trial is an unexplored architecture
            if outcome is Outcome.REPEAT or (idle and idle % ADVISOR_PATIENCE == 0):
                queue_unexplored(agent)
            if idle >= MAX_PROPOSALS_WITHOUT_TRAINING:
                raise SearchStopped(
                    f"the advisor proposed {idle} architectures in a row that were repeats or "
                    "impossible; the search space may be exhausted or mostly invalid"
                )
            bar.n = min(budget, trials.finished_count(agent.study))
            bar.refresh()
    ended = agent.study.get_trials(deepcopy=False)
    if not any(map(trials.trained, ended)) and any(map(trials.failed, ended)):
        spent = sum(map(trials.counts_toward_budget, ended)) >= budget
        raise SearchStopped(f"every trial of study {agent.study.study_name!r} failed; the last one: "
                            f"{last_failure(agent.study)}. Fix the cause and run the same command again"
                            + (f" with a larger --max-trials (these failures used all {budget})" if spent else ""))
    return agent.best_model_arch


def space_exhausted(agent: AutoDistillation, ended: list[FrozenTrial]) -> bool:
    """Every valid architecture of a finite space has been trained, or ruled out before training."""
    if agent.config.allow_repeats:  # trained again on purpose (e.g. to average out noise)
        return False
    listed = agent.search_space.architectures()
    if listed is None:
        return False
    settled = trials.settled(ended)
    return all(a.key() in settled for a in listed if agent.valid(a))


def queue_unexplored(agent: AutoDistillation) -> None:
    """The advisor keeps proposing architectures already trained or ruled out: a model-based
    sampler learns nothing from a pruned trial, so a screened or impossible architecture
    stays its best guess, and a GP re-proposes points it has seen (a repeat is told the earlier
    result: nothing new). The next trial is then a random architecture (seeded by the study's
    seed and length) that the task can build and that is neither settled nor running, unless
    the queue already holds the next trial. It is kept for this worker's next proposal, which
    queues and takes it under the claim lock (AutoDistillation.propose): written into the study
    now, it would outlive a budget that other workers, or this trial, just spent."""
    known = agent.study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in known):
        return
    running = {key for t in known if t.state == TrialState.RUNNING
               and (key := TrialRecord.from_trial(t).architecture_key) is not None}
    rng = random.Random(f"{agent.config.seed}-{len(known)}")
    choice = agent.search_space.sample(rng, avoid=trials.settled(known) | running, valid=agent.valid)
    if choice is not None:
        log.info("the advisor proposed settled architectures; next: %s, drawn at random from the "
                 "unexplored valid ones", dict(choice))
        agent.unexplored = choice
