"""How a trial ends: trained, a repeat, ruled out (invalid, screened), stopped early, failed or
interrupted, each recorded with its reason in the study.

A trial that raises fails with its reason. One that a rerun would fail again in the same way
(a config, shape or mapping error, a TypeError or ValueError in a user function:
`rerun_fails_again`) costs no `max_trials`, so the budget is whole once the cause is fixed;
others (out of memory, a NaN loss, an OSError) count.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
from optuna.trial import TrialState

from autodistill.errors import AutodistillError, NonFiniteLossError
from autodistill.study import lost_trials
from autodistill.study.record import TrialRecord, write
from autodistill.study.trials import failed

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    TRAINED = "trained"
    REPEAT = "repeat"
    INVALID = "invalid"
    SCREENED = "screened"
    PRUNED = "pruned"
    FAILED = "failed"


class SearchStopped(AutodistillError):
    """The search ended before max_trials for a reason the user must see."""


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


def end_pruned(study: optuna.Study, trial: optuna.Trial, record: TrialRecord, outcome: Outcome,
               message: str) -> Outcome:
    """Record why, and end the trial as pruned (Optuna's state for 'stopped on purpose')."""
    write(trial, record)
    study.tell(trial, state=TrialState.PRUNED)
    log.info("trial %d %s", trial.number, message)
    return outcome


def end_failed(study: optuna.Study, trial: optuna.Trial, exc: BaseException) -> Outcome:
    reason = f"{type(exc).__name__}: {str(exc) or '(no message)'}"[:2000]
    write(trial, TrialRecord(failure_reason=reason, rerun_fails_again=rerun_fails_again(exc) or None))
    study.tell(trial, state=TrialState.FAIL)
    log.warning("trial %d failed: %s", trial.number, reason)
    return Outcome.FAILED


def end_interrupted(study: optuna.Study, trial: optuna.Trial, *, max_retries: int, grace_seconds: int) -> None:
    """Ctrl-C or SIGTERM: the trial ends failed, marked interrupted (it costs no budget), and
    its architecture is queued again for the next run."""
    try:
        write(trial, TrialRecord(interrupted=True))
        ended = study.tell(trial, state=TrialState.FAIL)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
        return  # it had ended already (recorded by an inner handler, or just told)
    except optuna.exceptions.OptunaError as exc:
        log.warning("trial %d interrupted and not recorded (%s); it is taken for lost after %d s "
                    "and tried again", trial.number, exc, grace_seconds)
        return
    log.warning("trial %d interrupted; its architecture is queued again for the next run", trial.number)
    lost_trials.retry_architecture(study, ended, max_retries=max_retries)


@contextmanager
def ending_interrupted(study: optuna.Study, trial: optuna.Trial, *, max_retries: int,
                       grace_seconds: int) -> Iterator[None]:
    """Ctrl-C or SIGTERM inside the block ends `trial` as interrupted (`end_interrupted`), then
    goes on up; a trial that has ended already is left as it is."""
    try:
        yield
    except KeyboardInterrupt:
        end_interrupted(study, trial, max_retries=max_retries, grace_seconds=grace_seconds)
        raise


def last_failure(study: optuna.Study) -> str | None:
    ended = [t for t in study.get_trials(deepcopy=False) if failed(t)]
    return TrialRecord.from_trial(ended[-1]).failure_reason if ended else None


__all__ = ["Outcome", "SearchStopped", "end_failed", "end_interrupted", "end_pruned", "ending_interrupted",
           "last_failure", "rerun_fails_again"]
