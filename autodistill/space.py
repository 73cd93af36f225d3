"""The architecture search space: config dimensions -> Optuna distributions -> an Architecture.

A search space maps dimension names to one of three kinds of dimension:

    hidden_size: [128, 256, 384]                 # Categorical (a list, or {choices: [...]})
    num_layers: {low: 1, high: 6}                # IntRange (low/high ints, optional step)
    dropout: {low: 0.0, high: 0.5, step: 0.1}    # FloatRange (optional step, or log: true)
    learning_rate: {low: 1.0e-5, high: 1.0e-2, log: true}

Categorical choices stay categorical: Optuna samples them as unordered choices and
hands back the very value written in the config (int, float, str or bool), all of one type.
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import random
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeGuard, cast

if TYPE_CHECKING:  # Optuna is imported where a distribution is made: validating a config needs none
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

from autodistill.errors import ConfigError, did_you_mean

# a value a dimension can take; also the value type of an Architecture
ChoiceValue = bool | int | float | str

ALLOWED_FORMS = (
    "allowed forms: a list of choices [a, b, c] (all int, float, str or bool); "
    "{choices: [a, b, c]}; {low: 1, high: 6} or {low: 64, high: 384, step: 64} (ints); "
    "{low: 0.0, high: 0.5, step: 0.1} or {low: 1.0e-5, high: 1.0e-2, log: true} (floats)"
)
_RANGE_KEYS = ("low", "high", "step", "log")
# PyYAML follows YAML 1.1 and reads `1e-5` (no dot) as a string; range bounds accept it.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_STEP_TOLERANCE = 1e-8


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _round_significant(value: float) -> float:
    """`value` to 12 significant digits, so float noise (0.1 + 0.2 vs 0.3) disappears."""
    return float(f"{value:.12g}") + 0.0  # + 0.0 turns -0.0 into 0.0


def _is_multiple(span: float, step: float) -> bool:
    """Whether `span` is a whole number of `step`s, up to float rounding."""
    ratio = span / step
    return math.isfinite(ratio) and abs(ratio - round(ratio)) < _STEP_TOLERANCE


def _check_scalar(name: str, value: object, what: str) -> None:
    if not isinstance(value, (bool, int, float, str)):
        raise ConfigError(
            f"dimension {name!r}: {what} must be an int, float, str or bool, "
            f"got {value!r} ({type(value).__name__})"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"dimension {name!r}: {what} must be finite, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Categorical:
    """An unordered choice among scalar values (`[128, 256, 384]`)."""

    name: str
    choices: tuple[ChoiceValue, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ConfigError(f"dimension {self.name!r}: the choice list is empty, got []")
        for choice in self.choices:
            _check_scalar(self.name, choice, "every choice")
        # 1, 1.0 and True are one value to Python and to Optuna's index lookup
        seen: list[ChoiceValue] = []
        for choice in self.choices:
            same = [s for s in seen if s == choice]
            if same:
                raise ConfigError(
                    f"dimension {self.name!r}: choices must be distinct, but {same[0]!r} and "
                    f"{choice!r} are equal (1, 1.0 and True count as one value), "
                    f"got {list(self.choices)!r}"
                )
            seen.append(choice)
        kinds = list(dict.fromkeys(type(c).__name__ for c in self.choices))
        if len(kinds) > 1:
            raise ConfigError(
                f"dimension {self.name!r}: choices must all be of one type, got {' and '.join(kinds)} "
                f"in {list(self.choices)!r}; write them alike (e.g. [16, 32], [0.5, 1.0] or "
                "['gelu', 'relu'])"
            )

    def to_distribution(self) -> CategoricalDistribution:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.choices)

    def count(self) -> int:
        return len(self.choices)

    def values(self) -> list[ChoiceValue]:
        return list(self.choices)

    def contains(self, value: object) -> bool:
        # types must match too: True is not the choice 1, nor 128.0 the choice 128
        return any(type(value) is type(c) and value == c for c in self.choices)

    def suggest(self, trial: optuna.trial.BaseTrial) -> ChoiceValue:
        return cast(ChoiceValue, trial.suggest_categorical(self.name, self.choices))  # one of the choices


def _check_range(
    dimension: IntRange | FloatRange, *, stepped: bool, log_low_ok: bool, log_rule: str
) -> None:
    """The rules IntRange and FloatRange share: a bool log, low <= high, log without step."""
    where = f"dimension {dimension.name!r}"
    if not isinstance(dimension.log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {dimension.log!r}")
    if dimension.low > dimension.high:
        raise ConfigError(
            f"{where}: low <= high must hold, got low={dimension.low}, high={dimension.high}"
        )
    if dimension.log and stepped:
        raise ConfigError(
            f"{where}: log: true cannot be combined with step, got step={dimension.step}; "
            "drop one of them"
        )
    if dimension.log and not log_low_ok:
        raise ConfigError(f"{where}: log: true needs {log_rule}, got low={dimension.low}")


@dataclass(frozen=True, kw_only=True)
class IntRange:
    """Integers from `low` to `high` inclusive, every `step`-th one, optionally log-scaled."""

    name: str
    low: int
    high: int
    step: int = 1
    log: bool = False

    def __post_init__(self) -> None:
        for key in ("low", "high", "step"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"dimension {self.name!r}: {key} must be an int, got {value!r}")
        if self.step < 1:
            raise ConfigError(f"dimension {self.name!r}: step must be >= 1, got step={self.step}")
        _check_range(self, stepped=self.step != 1, log_low_ok=self.low >= 1, log_rule="low >= 1")
        if (self.high - self.low) % self.step:
            raise ConfigError(
                f"dimension {self.name!r}: high - low must be a multiple of step, got "
                f"low={self.low}, high={self.high}, step={self.step}; set high to "
                f"{self.low + (self.high - self.low) // self.step * self.step}"
            )

    def to_distribution(self) -> IntDistribution:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def count(self) -> int:
        return (self.high - self.low) // self.step + 1

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def contains(self, value: object) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def suggest(self, trial: optuna.trial.BaseTrial) -> int:
        return trial.suggest_int(self.name, self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True, kw_only=True)
class FloatRange:
    """Reals from `low` to `high`; continuous, log-scaled, or on a grid of `step`."""

    name: str
    low: float
    high: float
    step: float | None = None
    log: bool = False

    def __post_init__(self) -> None:
        for key in ("low", "high", "step"):
            value = getattr(self, key)
            if key == "step" and value is None:
                continue
            if not _is_number(value) or not math.isfinite(value):
                raise ConfigError(
                    f"dimension {self.name!r}: {key} must be a finite number, got {value!r}"
                )
            object.__setattr__(self, key, float(value))
        if self.step is not None and self.step <= 0:
            raise ConfigError(f"dimension {self.name!r}: step must be > 0, got step={self.step}")
        _check_range(
            self, stepped=self.step is not None, log_low_ok=self.low > 0, log_rule="low > 0"
        )
        if self.step is not None and not _is_multiple(self.high - self.low, self.step):
            raise ConfigError(
                f"dimension {self.name!r}: high - low must be a multiple of step, "
                f"got low={self.low}, high={self.high}, step={self.step}"
            )

    def to_distribution(self) -> FloatDistribution:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def count(self) -> int | None:
        if self.low == self.high:
            return 1
        if self.step is None:
            return None
        return round((self.high - self.low) / self.step) + 1

    def values(self) -> list[float]:
        count = self.count()
        if count is None:
            raise ConfigError(
                f"dimension {self.name!r} is a continuous float range "
                f"(low={self.low}, high={self.high}) and has no finite grid; "
                "add a step, e.g. {low: 0.0, high: 0.5, step: 0.1}, or list the choices"
            )
        step = self.step or 0.0
        points = (_round_significant(self.low + i * step) for i in range(count))
        return [min(max(p, self.low), self.high) for p in points]

    def contains(self, value: object) -> bool:
        if not _is_number(value) or not self.low <= value <= self.high:
            return False
        return self.step is None or _is_multiple(value - self.low, self.step)

    def suggest(self, trial: optuna.trial.BaseTrial) -> float:
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


Dimension = Categorical | IntRange | FloatRange


def _parse_bound(name: str, key: str, value: object) -> object:
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    if not _is_number(value):
        raise ConfigError(f"dimension {name!r}: {key} must be a number, got {value!r}")
    return value


def _parse_dimension(name: str, value: object) -> Dimension:
    """One config value -> one dimension; raises ConfigError naming the dimension."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return Categorical(name=name, choices=tuple(value))
    if not isinstance(value, Mapping):
        raise ConfigError(f"dimension {name!r}: expected a list or a mapping, got {value!r}")
    keys = [str(k) for k in value]
    if "choices" in keys:
        extra = [k for k in keys if k != "choices"]
        if extra:
            raise ConfigError(
                f"dimension {name!r}: 'choices' cannot be combined with {extra}, got {dict(value)!r}"
            )
        choices = value["choices"]
        if not isinstance(choices, Sequence) or isinstance(choices, str):
            raise ConfigError(f"dimension {name!r}: choices must be a list, got {choices!r}")
        return Categorical(name=name, choices=tuple(choices))
    unknown = [k for k in keys if k not in _RANGE_KEYS]
    if unknown:
        hint = did_you_mean(unknown[0], (*_RANGE_KEYS, "choices"))
        raise ConfigError(
            f"dimension {name!r}: unknown key {unknown[0]!r}{hint}, got {dict(value)!r}"
        )
    missing = [k for k in ("low", "high") if k not in keys]
    if missing:
        raise ConfigError(
            f"dimension {name!r}: a range needs {' and '.join(missing)}, got {dict(value)!r}"
        )
    if "step" in keys and value.get("log"):
        raise ConfigError(
            f"dimension {name!r}: log: true cannot be combined with step, got {dict(value)!r}; "
            "drop one of them"
        )
    bounds = {k: _parse_bound(name, k, value[k]) for k in ("low", "high", "step") if k in keys}
    log = value.get("log", False)
    if all(isinstance(b, int) for b in bounds.values()):
        return IntRange(name=name, log=log, **bounds)  # type: ignore[arg-type]
    return FloatRange(name=name, log=log, **bounds)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """An ordered, non-empty set of named dimensions; `source` names where it came from."""

    dimensions: tuple[Dimension, ...]
    source: str = field(default="<config>", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        if not self.dimensions:
            raise ConfigError(f"{self.source}: the search space is empty; {ALLOWED_FORMS}")
        names = [d.name for d in self.dimensions]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(
                f"{self.source}: dimension names must be unique, got {repeated} twice"
            )

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, object], *, source: str = "<config>"
    ) -> SearchSpace:
        """Parse `{name: list | {choices} | {low, high[, step][, log]}}` into a search space."""
        if not isinstance(mapping, Mapping):
            raise ConfigError(
                f"{source}: the search space must be a mapping of dimension names, "
                f"got {mapping!r}; {ALLOWED_FORMS}"
            )
        dimensions = []
        for name, value in mapping.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(
                    f"{source}: dimension names must be non-empty strings, got {name!r}"
                )
            try:
                dimensions.append(_parse_dimension(name, value))
            except ConfigError as error:
                raise ConfigError(f"{source}: search space {error}; {ALLOWED_FORMS}") from None
        return cls(dimensions=tuple(dimensions), source=source)

    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {d.name: d.to_distribution() for d in self.dimensions}

    def grid(self) -> dict[str, list[ChoiceValue]]:
        """Every value of every dimension, for `optuna.samplers.GridSampler`."""
        try:
            return {d.name: list[ChoiceValue](d.values()) for d in self.dimensions}
        except ConfigError as error:
            raise ConfigError(
                f"{self.source}: a grid search needs a finite grid, but {error}"
            ) from None

    def size(self) -> int | None:
        """The number of distinct architectures, or None when a dimension is continuous."""
        total = 1
        for dimension in self.dimensions:
            count = dimension.count()
            if count is None:
                return None
            total *= count
        return total

    def contains(self, architecture: Mapping[str, object]) -> bool:
        """Whether `architecture` names exactly these dimensions, each with a value in it."""
        return set(architecture) == set(self.names()) and all(
            d.contains(architecture[d.name]) for d in self.dimensions
        )

    def suggest(self, trial: optuna.trial.BaseTrial) -> Architecture:
        """Ask `trial` (and so the study's sampler) for one value per dimension."""
        return Architecture.from_params({d.name: d.suggest(trial) for d in self.dimensions})

    def architectures(self) -> list[Architecture] | None:
        """Every architecture, in the order of the dimensions' values; None for a space that is
        continuous or holds more than MAX_ENUMERATED (listed once, then kept)."""
        size = self.size()
        if size is None or size > MAX_ENUMERATED:
            return None
        if "_architectures" not in self.__dict__:  # frozen: set once, past __setattr__
            names = self.names()
            listed = [Architecture(dict(zip(names, values)))
                      for values in itertools.product(*(d.values() for d in self.dimensions))]
            object.__setattr__(self, "_architectures", listed)
        return self.__dict__["_architectures"]

    def valid_count(self, valid: Callable[[Architecture], bool]) -> int | None:
        """How many architectures `valid` accepts (e.g. the builder's rules: heads dividing the
        hidden size); None when the space is too large or continuous to list."""
        listed = self.architectures()
        return None if listed is None else sum(map(valid, listed))

    def sample(self, rng: random.Random, *, avoid: Collection[str] = (),
               valid: Callable[[Architecture], bool] | None = None) -> Architecture | None:
        """A uniformly random architecture that `valid` accepts (default: every one) and whose
        `key()` is not in `avoid`, or None when there is none. A space of up to MAX_ENUMERATED
        architectures is listed and one drawn from the rest; from a larger or continuous one,
        up to MAX_ENUMERATED draws are made (rejection), then None."""
        accept = valid or (lambda architecture: True)
        listed = self.architectures()
        if listed is not None:
            rest = [a for a in listed if a.key() not in avoid and accept(a)]
            return rng.choice(rest) if rest else None
        for _ in range(MAX_ENUMERATED):
            architecture = Architecture({d.name: _draw(d, rng) for d in self.dimensions})
            if architecture.key() not in avoid and accept(architecture):
                return architecture
        return None


MAX_ENUMERATED = 100_000


def _draw(dimension: Dimension, rng: random.Random) -> ChoiceValue:
    if isinstance(dimension, IntRange):
        return rng.randrange(dimension.low, dimension.high + 1, dimension.step)
    if isinstance(dimension, FloatRange) and dimension.count() is None:
        if dimension.log:
            return math.exp(rng.uniform(math.log(dimension.low), math.log(dimension.high)))
        return rng.uniform(dimension.low, dimension.high)
    return rng.choice(dimension.values())


class Architecture(Mapping[str, ChoiceValue]):
    """An immutable, hashable mapping from dimension name to value.

    Two architectures are equal when their `key()`s are: the same names and values,
    in any order, with types kept apart (1, 1.0 and True are three values). Compare
    with a plain dict through `to_dict()`.
    """

    __slots__ = ("_key", "_params")

    def __init__(self, params: Mapping[str, ChoiceValue]) -> None:
        for name, value in params.items():
            if not isinstance(name, str):
                raise ConfigError(f"architecture parameter names must be strings, got {name!r}")
            _check_scalar(name, value, "an architecture value")
        self._params = dict(params)
        canonical = {
            n: _round_significant(v) if isinstance(v, float) else v for n, v in self._params.items()
        }
        self._key = json.dumps(canonical, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> Architecture:
        """Build from loosely typed params (a trial's `params`, numpy scalars, ...)."""
        plain: dict[str, ChoiceValue] = {}
        for name, value in params.items():
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = int(value)
            elif isinstance(value, numbers.Real) and not isinstance(value, bool):
                value = float(value)
            plain[name] = value  # type: ignore[assignment]
        return cls(plain)

    def key(self) -> str:
        """Canonical JSON (sorted names, floats to 12 significant digits): equal for equal params."""
        return self._key

    def to_dict(self) -> dict[str, ChoiceValue]:
        return dict(self._params)

    def __getitem__(self, name: str) -> ChoiceValue:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Architecture):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Architecture({self._params!r})"
