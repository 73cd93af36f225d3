"""What a model-based advisor sees of the study: its pruned trials as pending, its repeats not at all.

**Pruned trials, as pending.** A trial ends pruned when its architecture is ruled out before
training (impossible, or screened out by `search.constraints`), when it is stopped early, or
when it only repeats or waits for another trial: in every case its architecture is settled.
Optuna's GPSampler models complete trials only, so from its view nothing was learnt and it
proposes the same architecture again, and again (108 screened proposals for 24 trained
students over three BO searches of scripts/bench_search.py, against TPE's 17). It does take
running trials as pending points whose results it already counts on, so its acquisition there
falls to about nothing: the view shows every pruned trial as running, and it proposes
elsewhere; what it learns from the complete trials is unchanged.

**Repeats, hidden.** A repeated architecture is recorded as a trial of its own that carries the
earlier trial's params and values (study/trial_steps.py; the search has hundreds of them in a
proxy study). GPSampler's `sample_relative` (optuna/samplers/_gp/sampler.py) refits its kernel
on every COMPLETE trial at every ask, and conditions its q-batch acquisition (qLogEI, qLogEHVI)
on every RUNNING one, drawing QMC fantasies at each. A repeat as complete is a duplicated row:
the fit grows with it (cubically) and learns nothing; as pending it would still cost a
fantasy at a point whose value is known (and turn LogEHVI into the slower qLogEHVI in a study
with nothing pruned). Hidden, it costs nothing and the model loses nothing, since the earlier
trial holds the same point and value. A repeat is recognised by being one (the same state,
params and values as an earlier trial), not by the study's record, which sits above the
advisors; a retrained architecture (`search.allow_repeats`) has values of its own and is seen.
"""

from __future__ import annotations

import copy
from collections.abc import Container, Hashable, Iterable, Sequence
from typing import Any, cast

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


class AdvisorView(BaseSampler):
    """`sampler`, asked with the study it should see: pruned trials running, repeats left out."""

    def __init__(self, sampler: BaseSampler) -> None:
        self.sampler = sampler

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        # a Study in everything a sampler reads of it
        return self.sampler.sample_relative(cast(optuna.Study, _StudyView(study)), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        # the same view: a sampler that counts complete trials here (GPSampler's startup warning) counts alike
        return self.sampler.sample_independent(cast(optuna.Study, _StudyView(study)), trial, param_name,
                                               param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


class _StudyView:
    """The study as the advisor reads it: its trials without repeats, the pruned ones RUNNING."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        trials = [_pending(t) for t in _first_of_each(self._study._get_trials(deepcopy=deepcopy, use_cache=use_cache))]
        return trials if states is None else [t for t in trials if t.state in states]


def _first_of_each(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """`trials` without the complete or pruned ones that repeat an earlier one's state, params and values."""
    seen: set[Hashable] = set()
    kept = []
    for trial in trials:
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            key = (trial.state, tuple(sorted(trial.params.items())), tuple(trial.values or ()))
            if key in seen:
                continue
            seen.add(key)
        kept.append(trial)
    return kept


def _pending(trial: FrozenTrial) -> FrozenTrial:
    if trial.state != TrialState.PRUNED:
        return trial
    shown = copy.copy(trial)
    shown.state, shown.datetime_complete = TrialState.RUNNING, None
    return shown
