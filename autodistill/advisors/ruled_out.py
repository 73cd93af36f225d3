"""Architectures ruled out before training, shown to a Gaussian-process advisor as pending.

Screening (`search.constraints`) and impossible architectures end a trial pruned before any
training. Optuna's GPSampler models complete trials only: from its view nothing was learnt,
so it proposes the same architecture again, and again (108 screened proposals in 24 trained
over three BO searches of scripts/bench_search.py, against TPE's 17). It also takes running
trials as pending points whose results it already counts on, so its acquisition there falls
to about nothing. `RuledOutAsPending` shows it each ruled-out trial as running: it proposes
elsewhere, and what it learnt from the trained ones is unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from autodistill.study.trials import ruled_out


class RuledOutAsPending(BaseSampler):
    """`sampler`, asked with the ruled-out trials of the study shown as running."""

    def __init__(self, sampler: BaseSampler, *, is_ruled_out: Callable[[FrozenTrial], bool] = ruled_out) -> None:
        self.sampler, self.is_ruled_out = sampler, is_ruled_out

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.sampler.sample_relative(_PendingView(study, self.is_ruled_out), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


class _PendingView:
    """The study as the sampler reads it, with ruled-out trials in the RUNNING state."""

    def __init__(self, study: optuna.Study, is_ruled_out: Callable[[FrozenTrial], bool]) -> None:
        self._study, self._is_ruled_out = study, is_ruled_out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        trials = [self._pending(t) for t in self._study._get_trials(deepcopy=deepcopy, use_cache=use_cache)]
        return trials if states is None else [t for t in trials if t.state in states]

    def _pending(self, trial: FrozenTrial) -> FrozenTrial:
        if not self._is_ruled_out(trial):
            return trial
        shown = copy.copy(trial)
        shown.state, shown.datetime_complete = TrialState.RUNNING, None
        return shown
