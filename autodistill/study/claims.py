"""Several workers on one study: claiming the next trial, and waiting for another worker's.

Each worker claims its next trial under a lock shared through the storage
(study/worker_lock.py) and starts one only while finished plus running trials stay below
`max_trials`, so the study ends with exactly `max_trials` finished trials. Before it looks,
trials whose worker is gone are failed and their architecture queued again
(study/lost_trials.py). A proposal of an architecture another worker is training becomes its
twin: it waits for that trial and reuses its result (unless `allow_repeats`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from autodistill.config.schema import SearchSection
from autodistill.space import Architecture
from autodistill.study import lost_trials
from autodistill.study.record import TrialRecord, write
from autodistill.study.trials import counts_toward_budget, holds_budget
from autodistill.study.worker_lock import claim_lock

log = logging.getLogger(__name__)

POLL_SECONDS = 5  # how often a waiting worker looks at the study again (at most heartbeat_seconds)

Proposal = tuple[optuna.Trial, Architecture]


class Claims:
    """This worker's side of sharing `study` with others."""

    def __init__(self, study: optuna.Study, storage: optuna.storages.RDBStorage, config: SearchSection) -> None:
        self.study, self.storage, self.config = study, storage, config

    @property
    def poll_seconds(self) -> float:
        return min(POLL_SECONDS, self.config.heartbeat_seconds)

    def _fail_lost(self) -> None:
        lost_trials.fail_lost_trials(self.study, grace_seconds=self.config.grace_seconds,
                                     max_retries=self.config.max_retries)

    def next_trial(self, budget: int, *, propose: Callable[[int], Proposal],
                   exhausted: Callable[[list[FrozenTrial]], bool]) -> Proposal | None:
        """This worker's next trial (`propose(number of trials so far)`), or None when the study
        is done (`budget` finished trials, or the space `exhausted`). Waits while the rest of the
        budget is held by other workers' running trials."""
        announced = False
        while True:
            with claim_lock(self.storage, self.study.study_name):
                self._fail_lost()
                trials = self.study.get_trials(deepcopy=False)
                finished = sum(map(counts_toward_budget, trials))
                if finished >= budget:
                    return None
                if exhausted(trials):
                    log.warning("every architecture of the search space has been trained; stopping")
                    return None
                running = [t for t in trials if holds_budget(t)]
                if finished + len(running) < budget:
                    trial, architecture = propose(len(trials))
                    twin = next((t.number for t in running
                                 if TrialRecord.from_trial(t).architecture_key == architecture.key()), None)
                    if twin is not None and not self.config.allow_repeats:
                        write(trial, TrialRecord(twin_of=twin))
                    return trial, architecture
            if not announced:
                log.info("the rest of max_trials is held by %d running trial(s) of other workers; "
                         "waiting for them", len(running))
                announced = True
            time.sleep(self.poll_seconds)

    def wait_for(self, number: int) -> TrialState:
        """How another worker's trial ended, once it has (failing it if its worker is gone)."""
        log.info("waiting for trial %d of another worker (the same architecture)", number)
        while True:
            self._fail_lost()
            state = self.study.get_trials(deepcopy=False)[number].state
            if state.is_finished():
                return state
            time.sleep(self.poll_seconds)


__all__ = ["Claims", "POLL_SECONDS"]
