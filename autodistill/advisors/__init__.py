"""Advisors: a config's `search_algorithm` name -> the Optuna sampler that proposes architectures.

    sampler = make_advisor("BO", space=space, seed=42, n_objectives=2)

Every advisor is an `optuna.samplers.BaseSampler`, so a study runs any of them the
same way. Users add their own with

    ADVISORS.register("MY_ALGO", lambda *, space, seed, n_objectives, startup_trials: MySampler(seed=seed))

`startup_trials` is how many random proposals a model-based advisor makes before it
models the results (Optuna's own default, 10, would make BO and TPE propose exactly what
`random` proposes in a short search with the same seed). The built-ins below are named in
ADVISORS (autodistill/registries.py), which imports this module when a search first asks for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import optuna

from autodistill.advisors.advisor_view import AdvisorView
from autodistill.advisors.skopt_sampler import SkoptSampler
from autodistill.errors import ConfigError
from autodistill.registries import ADVISORS
from autodistill.space import SearchSpace

__all__ = [
    "ADVISORS",
    "AdvisorFactory",
    "AdvisorView",
    "SkoptSampler",
    "make_advisor",
]

_SEED_LIMIT = 2**32


class AdvisorFactory(Protocol):
    """Builds a sampler for one study from its search space, seed and number of objectives."""

    def __call__(
        self, *, space: SearchSpace, seed: int | None, n_objectives: int, startup_trials: int
    ) -> optuna.samplers.BaseSampler: ...


def make_advisor(
    name: str, *, space: SearchSpace, seed: int | None, n_objectives: int, startup_trials: int = 10
) -> optuna.samplers.BaseSampler:
    """The sampler registered as `name` (case-insensitive), built for this study."""
    factory = ADVISORS.get(name)
    if seed is not None and (
        not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < _SEED_LIMIT
    ):
        raise ConfigError(f"seed must be null or an int in [0, 2**32), got {seed!r}")
    if not isinstance(n_objectives, int) or isinstance(n_objectives, bool) or n_objectives < 1:
        raise ConfigError(f"n_objectives must be an int >= 1, got {n_objectives!r}")
    if isinstance(startup_trials, bool) or not isinstance(startup_trials, int) or startup_trials < 2:
        raise ConfigError(f"startup_trials must be an int >= 2, got {startup_trials!r}")
    return factory(space=space, seed=seed, n_objectives=n_objectives, startup_trials=startup_trials)


def gaussian_process(
    *, space: SearchSpace, seed: int | None, n_objectives: int, startup_trials: int
) -> optuna.samplers.BaseSampler:
    # it models complete trials only: pruned ones (screened, stopped early) would be proposed again,
    # and it refits on every complete one: repeats would be fitted again (advisors/advisor_view.py)
    return AdvisorView(optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials))


def tpe(
    *, space: SearchSpace, seed: int | None, n_objectives: int, startup_trials: int
) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=startup_trials)


def random_sampler(
    *, space: SearchSpace, seed: int | None, n_objectives: int, startup_trials: int
) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler whose only after-trial work, `study.stop()`, is left out: that call is
    for `study.optimize` and raises under ask/tell; the search loop ends by itself once
    every architecture of the space has been trained."""

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, state: optuna.trial.TrialState,
                    values: Sequence[float] | None) -> None:
        return None


def grid(
    *, space: SearchSpace, seed: int | None, n_objectives: int, startup_trials: int
) -> optuna.samplers.BaseSampler:
    return _AskTellGridSampler(space.grid(), seed=seed)


def nsga2(
    *, space: SearchSpace, seed: int | None, n_objectives: int, startup_trials: int
) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=startup_trials)


def skopt(
    *, space: SearchSpace, seed: int | None, n_objectives: int, startup_trials: int
) -> optuna.samplers.BaseSampler:
    # it fits every complete trial afresh at each ask: repeats left out (advisors/advisor_view.py)
    return AdvisorView(SkoptSampler(seed=seed, n_initial_points=startup_trials))
