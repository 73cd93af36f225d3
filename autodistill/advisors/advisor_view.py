"""Pruned trials shown to a Gaussian-process advisor as pending.

A trial ends pruned when its architecture is ruled out before training (impossible, or
screened out by `search.constraints`), when it is stopped early, or when it only repeats or
waits for another trial: in every case its architecture is settled. Optuna's GPSampler
models complete trials only, so from its view nothing was learnt and it proposes the same
architecture again, and again (108 screened proposals for 24 trained students over three
BO searches of scripts/bench_search.py, against TPE's 17). It does take running trials as
pending points whose results it already counts on, so its acquisition there falls to
about nothing: `PrunedAsPending` shows it every pruned trial as running, and it proposes
elsewhere; what it learns from the complete trials is unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence
from typing import Any, cast

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


class PrunedAsPending(BaseSampler):
    """`sampler`, asked with the pruned trials of the study shown as running."""

    def __init__(self, sampler: BaseSampler) -> None:
        self.sampler = sampler

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        # a Study in everything a sampler reads of it
        return self.sampler.sample_relative(cast(optuna.Study, _PendingView(study)), trial, search_space)

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
    """The study as the sampler reads it, with its pruned trials in the RUNNING state."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        trials = [_pending(t) for t in self._study._get_trials(deepcopy=deepcopy, use_cache=use_cache)]
        return trials if states is None else [t for t in trials if t.state in states]


def _pending(trial: FrozenTrial) -> FrozenTrial:
    if trial.state != TrialState.PRUNED:
        return trial
    shown = copy.copy(trial)
    shown.state, shown.datetime_complete = TrialState.RUNNING, None
    return shown
