"""The scikit-optimize advisor: an Optuna sampler that asks `skopt.Optimizer` for each trial.

The sampler keeps no record of the study. For every trial it builds a fresh
`skopt.Optimizer`, tells it every complete trial stored in the study, and asks it for
one point; so a resumed study, or several workers sharing one, see the same history.
Its random choices come from (seed, trial number), which makes the proposals of a
seeded run repeatable, resumed or not.

scikit-optimize is single-objective. A multi-objective study stays multi-objective;
only the value skopt fits is a scalar, built the ParEGO way (Knowles 2006): each
objective is normalised to [0, 1] over the observed trials (0 the best), and an
augmented Chebyshev function with a random weight vector per trial combines them.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeGuard

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import intersection_search_space
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autodistill.errors import ConfigError

ESTIMATORS = ("GP", "RF", "ET", "GBRT")
ACQUISITION_FUNCTIONS = ("gp_hedge", "EI", "LCB", "PI")
CHEBYSHEV_RHO = 0.05  # ParEGO's weight of the linear term in the augmented Chebyshev function
_SEED_LIMIT = 2**32
# tags that keep the random streams of (seed, trial number) apart; SeedSequence pads short
# entropy with zeros, so the tags must differ in a position both streams fill
_RELATIVE_STREAM, _INDEPENDENT_STREAM = 1, 2


def import_skopt() -> ModuleType:
    """The `skopt` module, or an ImportError that says how to install it."""
    try:
        import skopt
    except ImportError as error:
        raise ImportError(
            "search_algorithm 'skopt' needs scikit-optimize, which is not installed; "
            "install it with `pip install scikit-optimize`"
        ) from error
    return skopt


def scalarise(
    values: np.ndarray, directions: Sequence[StudyDirection], weights: np.ndarray
) -> np.ndarray:
    """ParEGO scalarisation of `values` (trials x objectives) into one value to minimise.

    Each objective is flipped so that lower is better, normalised to [0, 1] over the
    trials, weighted, and combined as max_i(w_i f_i) + rho * sum_i(w_i f_i).
    """
    signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
    signed = values * signs
    low, high = signed.min(axis=0), signed.max(axis=0)
    normalised = (signed - low) / np.where(high > low, high - low, 1.0)
    weighted = normalised * weights
    return weighted.max(axis=1) + CHEBYSHEV_RHO * weighted.sum(axis=1)


_Supported = CategoricalDistribution | IntDistribution | FloatDistribution


@dataclass(frozen=True)
class _Axis:
    """One Optuna distribution seen as one skopt dimension, with the value mapping both ways.

    Categorical choices become category indices (unordered, one-hot in skopt); stepped
    ranges become integer step indices; the rest keep their values and log scale.
    """

    distribution: _Supported

    @property
    def _step(self) -> int | float | None:
        """The step of a stepped range (skopt sees step indices), else None."""
        d = self.distribution
        if isinstance(d, IntDistribution):
            return d.step if d.step != 1 else None
        return d.step if isinstance(d, FloatDistribution) else None

    def dimension(self, skopt: ModuleType) -> Any:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return skopt.space.Categorical(list(range(len(d.choices))))
        step = self._step
        if step is not None:
            return skopt.space.Integer(0, round((d.high - d.low) / step))
        prior = "log-uniform" if d.log else "uniform"
        if isinstance(d, IntDistribution):
            return skopt.space.Integer(d.low, d.high, prior=prior)
        return skopt.space.Real(d.low, d.high, prior=prior)

    def encode(self, value: Any) -> int | float:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return int(d.to_internal_repr(value))
        step = self._step
        if step is not None:
            return round((value - d.low) / step)
        return int(value) if isinstance(d, IntDistribution) else float(value)

    def decode(self, point: Any) -> Any:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return d.choices[int(point)]
        if isinstance(d, IntDistribution):
            return d.low + int(point) * d.step if self._step is not None else int(point)
        step = self._step
        value = d.low + int(point) * step if step is not None else float(point)
        return min(max(value, d.low), d.high)


def _is_supported(distribution: BaseDistribution) -> TypeGuard[_Supported]:
    return (
        isinstance(distribution, (CategoricalDistribution, IntDistribution, FloatDistribution))
        and not distribution.single()
    )


class SkoptSampler(BaseSampler):
    """Bayesian optimisation through `skopt.Optimizer` (ask/tell), as an Optuna sampler.

    Args:
        seed: seed of every random choice; None draws one.
        n_initial_points: complete trials sampled at random before skopt's model is used.
        base_estimator: skopt's surrogate model: "GP", "RF", "ET" or "GBRT".
        acq_func: acquisition function: "gp_hedge", "EI", "LCB" or "PI".
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_initial_points: int = 5,
        base_estimator: str = "GP",
        acq_func: str = "gp_hedge",
    ) -> None:
        if seed is not None and (
            not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < _SEED_LIMIT
        ):
            raise ConfigError(f"seed must be None or an int in [0, 2**32), got {seed!r}")
        if (
            not isinstance(n_initial_points, int)
            or isinstance(n_initial_points, bool)
            or n_initial_points < 1
        ):
            raise ConfigError(f"n_initial_points must be an int >= 1, got {n_initial_points!r}")
        estimators = {e.lower(): e for e in ESTIMATORS}
        if not isinstance(base_estimator, str) or base_estimator.lower() not in estimators:
            raise ConfigError(
                f"base_estimator must be one of {', '.join(ESTIMATORS)}, got {base_estimator!r}"
            )
        acquisitions = {a.lower(): a for a in ACQUISITION_FUNCTIONS}
        if not isinstance(acq_func, str) or acq_func.lower() not in acquisitions:
            raise ConfigError(
                f"acq_func must be one of {', '.join(ACQUISITION_FUNCTIONS)}, got {acq_func!r}"
            )
        self._skopt = import_skopt()
        self._seed = seed if seed is not None else _fresh_seed()
        self._n_initial_points = n_initial_points
        self._base_estimator = estimators[base_estimator.lower()]
        self._acq_func = acquisitions[acq_func.lower()]

    def reseed_rng(self) -> None:
        self._seed = _fresh_seed()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        space = intersection_search_space(study.get_trials(deepcopy=False))
        return {name: d for name, d in space.items() if _is_supported(d)}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        observed = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if all(t.distributions.get(n) == d for n, d in search_space.items())
            and all(math.isfinite(v) for v in t.values)
        ]
        if len(observed) < self._n_initial_points:
            return {}  # every parameter goes to sample_independent
        rng = np.random.default_rng([self._seed, trial.number, _RELATIVE_STREAM])
        weights = rng.dirichlet(np.ones(len(study.directions)))
        targets = scalarise(np.array([t.values for t in observed]), study.directions, weights)
        # every distribution here is supported (infer_relative_search_space's); others would go to
        # sample_independent
        axes = {name: _Axis(d) for name, d in search_space.items() if _is_supported(d)}
        optimizer = self._skopt.Optimizer(
            [axis.dimension(self._skopt) for axis in axes.values()],
            base_estimator=self._base_estimator,
            n_initial_points=self._n_initial_points,
            acq_func=self._acq_func,
            random_state=int(rng.integers(np.iinfo(np.int32).max)),
        )
        from threadpoolctl import threadpool_limits  # installed with scikit-learn, as skopt is

        # the matrices are tiny: BLAS threads only compete with training for the cores
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            # its best point already told: skopt proposes a random one instead, and says so
            warnings.filterwarnings("ignore", message="The objective has been evaluated at point")
            optimizer.tell(
                [[axis.encode(t.params[name]) for name, axis in axes.items()] for t in observed],
                targets.tolist(),
            )
            point = optimizer.ask()
        return {name: axis.decode(x) for (name, axis), x in zip(axes.items(), point)}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        stream = np.random.SeedSequence(
            [self._seed, trial.number, _INDEPENDENT_STREAM, zlib.crc32(param_name.encode())]
        )
        fallback = RandomSampler(seed=int(stream.generate_state(1)[0]))
        return fallback.sample_independent(study, trial, param_name, param_distribution)


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])
