"""The search space: config forms -> Optuna distributions, errors, grid, size, Architecture."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from autodistill.errors import ConfigError
from autodistill.space import (
    Architecture,
    Categorical,
    FloatRange,
    IntRange,
    SearchSpace,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([128, 256, 384], CategoricalDistribution((128, 256, 384))),
        ({"choices": ["gelu", "relu"]}, CategoricalDistribution(("gelu", "relu"))),
        ([0.5, 1.0], CategoricalDistribution((0.5, 1.0))),
        ([True, False], CategoricalDistribution((True, False))),
        ({"low": 1, "high": 6}, IntDistribution(1, 6)),
        ({"low": 64, "high": 384, "step": 64}, IntDistribution(64, 384, step=64)),
        ({"low": 1, "high": 64, "log": True}, IntDistribution(1, 64, log=True)),
        ({"low": 1e-5, "high": 1e-2, "log": True}, FloatDistribution(1e-5, 1e-2, log=True)),
        ({"low": 0.0, "high": 0.5, "step": 0.1}, FloatDistribution(0.0, 0.5, step=0.1)),
        ({"low": 0, "high": 0.5}, FloatDistribution(0.0, 0.5)),
    ],
)
def test_each_value_form_parses_to_its_optuna_distribution(value, expected):
    space = SearchSpace.from_mapping({"dim": value})
    assert space.distributions() == {"dim": expected}


def test_yaml_exponent_floats_read_as_strings_still_make_a_log_float_range():
    mapping = yaml.safe_load("lr: {low: 1e-5, high: 1e-2, log: true}")
    assert mapping["lr"]["low"] == "1e-5"  # PyYAML (YAML 1.1) reads it as a string
    space = SearchSpace.from_mapping(mapping)
    assert space.distributions() == {"lr": FloatDistribution(1e-5, 1e-2, log=True)}


def test_dimensions_keep_the_config_order_and_kind():
    space = SearchSpace.from_mapping(
        {"hidden": [128, 256], "layers": {"low": 1, "high": 6}, "lr": {"low": 0.1, "high": 1.0}}
    )
    assert space.names() == ["hidden", "layers", "lr"]
    assert [type(d) for d in space.dimensions] == [Categorical, IntRange, FloatRange]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([], "choice list is empty"),
        ({"choices": []}, "choice list is empty"),
        ([128, 256, 128], "distinct"),
        ([1, True], "distinct"),
        ([1, 1.0], "distinct"),
        ([[1, 2], 3], "must be an int, float, str or bool"),
        ([{"a": 1}], "must be an int, float, str or bool"),
        ([None, 1], "must be an int, float, str or bool"),
        ([float("nan"), 1.0], "finite"),
        ([128, "wide"], "one type, got int and str"),
        ([16, 32.0], "one type, got int and float"),
        ([0.5, True], "one type, got float and bool"),
        ({"choices": "abc"}, "choices must be a list"),
        ({"choices": [1], "low": 0}, "cannot be combined"),
        ({"low": 6, "high": 1}, "low <= high"),
        ({"low": 0.5, "high": 0.1}, "low <= high"),
        ({"low": 0.0, "high": 1.0, "log": True}, "low > 0"),
        ({"low": -1e-3, "high": 1.0, "log": True}, "low > 0"),
        ({"low": 0, "high": 8, "log": True}, "low >= 1"),
        ({"low": 1e-5, "high": 1e-2, "log": True, "step": 1e-3}, "cannot be combined with step"),
        ({"low": 1, "high": 8, "log": True, "step": 1}, "cannot be combined with step"),
        ({"lwo": 1, "high": 6}, "did you mean 'low'"),
        ({"low": 1, "high": 6, "stp": 2}, "did you mean 'step'"),
        ({"low": 1}, "needs high"),
        ({"low": "one", "high": 6}, "low must be a number"),
        ({"low": 1, "high": 6, "log": "yes"}, "log must be true or false"),
        ({"low": 1, "high": 6, "step": 0}, "step must be >= 1"),
        ({"low": 64, "high": 380, "step": 64}, "multiple of step"),
        ({"low": 0.0, "high": 0.5, "step": 0.3}, "multiple of step"),
        (128, "expected a list or a mapping"),
    ],
)
def test_each_bad_form_is_a_config_error_naming_dimension_source_and_problem(value, problem):
    with pytest.raises(ConfigError) as caught:
        SearchSpace.from_mapping({"width": value}, source="space.yaml")
    message = str(caught.value)
    assert "'width'" in message
    assert "space.yaml" in message
    assert problem in message
    assert "allowed forms" in message


@pytest.mark.parametrize("mapping", [{}, [["width", [1, 2]]]])
def test_empty_or_non_mapping_space_is_a_config_error_naming_the_source(mapping):
    with pytest.raises(ConfigError, match="space.yaml"):
        SearchSpace.from_mapping(mapping, source="space.yaml")


def test_bad_value_is_quoted_in_the_error():
    with pytest.raises(ConfigError, match=r"low=6, high=1"):
        SearchSpace.from_mapping({"layers": {"low": 6, "high": 1}})


def test_dimensions_built_directly_are_validated_at_once():
    with pytest.raises(ConfigError, match="set high to 5"):
        IntRange(name="layers", low=1, high=6, step=2)
    with pytest.raises(ConfigError, match="distinct"):
        Categorical(name="act", choices=("relu", "relu"))
    with pytest.raises(ConfigError, match="unique"):
        SearchSpace(
            dimensions=(IntRange(name="a", low=1, high=2), IntRange(name="a", low=1, high=3))
        )


def test_size_counts_distinct_points_and_is_none_for_a_continuous_range():
    finite = SearchSpace.from_mapping(
        {
            "hidden": [128, 256, 384],
            "layers": {"low": 1, "high": 6},
            "inter": {"low": 64, "high": 384, "step": 64},
            "dropout": {"low": 0.0, "high": 0.5, "step": 0.1},
        }
    )
    assert finite.size() == 3 * 6 * 6 * 6
    continuous = SearchSpace.from_mapping(
        {"hidden": [128], "lr": {"low": 1e-5, "high": 1e-2, "log": True}}
    )
    assert continuous.size() is None


def test_grid_lists_every_value_without_float_noise():
    space = SearchSpace.from_mapping(
        {
            "act": ["relu", "gelu"],
            "inter": {"low": 64, "high": 256, "step": 64},
            "dropout": {"low": 0.0, "high": 0.5, "step": 0.1},
        }
    )
    assert space.grid() == {
        "act": ["relu", "gelu"],
        "inter": [64, 128, 192, 256],
        "dropout": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
    }


def test_grid_of_a_float_range_without_step_says_it_needs_a_step():
    space = SearchSpace.from_mapping(
        {"lr": {"low": 1e-5, "high": 1e-2, "log": True}}, source="space.yaml"
    )
    with pytest.raises(ConfigError) as caught:
        space.grid()
    message = str(caught.value)
    assert "'lr'" in message and "space.yaml" in message and "step" in message


def test_grid_sampler_visits_size_distinct_architectures():
    space = SearchSpace.from_mapping(
        {
            "hidden": [128, 256],
            "layers": {"low": 1, "high": 3},
            "dropout": {"low": 0.0, "high": 0.2, "step": 0.1},
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space.grid(), seed=0))
    keys = set()

    def objective(trial: optuna.Trial) -> float:
        keys.add(space.suggest(trial).key())
        return 0.0

    # optimize(), not ask/tell: GridSampler calls study.stop() after the last grid point
    study.optimize(objective, n_trials=100)
    assert len(study.trials) == len(keys) == space.size() == 18


@pytest.mark.parametrize("choices", [[128, 256], ["wide", "narrow"], [0.5, 1.0], [True, False]])
def test_categorical_choices_keep_their_value_and_type_through_a_trial(choices):
    space = SearchSpace.from_mapping({"kind": choices})
    study = optuna.create_study()
    suggested = []
    for choice in choices:
        study.enqueue_trial({"kind": choice})
        trial = study.ask()
        suggested.append(space.suggest(trial)["kind"])
        study.tell(trial, 0.0)
    stored = [t.params["kind"] for t in study.trials]

    def as_typed(values: list[object]) -> list[tuple[str, str]]:
        return sorted((type(v).__name__, repr(v)) for v in values)

    assert as_typed(suggested) == as_typed(stored) == as_typed(choices)


def test_suggest_returns_an_architecture_inside_the_space():
    space = SearchSpace.from_mapping(
        {
            "hidden": [128, 256],
            "layers": {"low": 1, "high": 6},
            "lr": {"low": 1e-5, "high": 1e-2, "log": True},
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        architecture = space.suggest(study.ask())
        assert isinstance(architecture, Architecture)
        assert space.contains(architecture)


def test_contains_checks_names_ranges_steps_and_types():
    space = SearchSpace.from_mapping(
        {"hidden": [128, 256], "inter": {"low": 64, "high": 256, "step": 64}}
    )
    assert space.contains({"hidden": 128, "inter": 192})
    assert not space.contains({"hidden": 128.0, "inter": 192})  # a float is not the int choice
    assert not space.contains({"hidden": 128, "inter": 100})  # off the step grid
    assert not space.contains({"hidden": 128, "inter": 320})  # above high
    assert not space.contains({"hidden": 128})  # a dimension missing
    assert not space.contains({"hidden": 128, "inter": 64, "extra": 1})


def test_architecture_key_is_sorted_canonical_json():
    architecture = Architecture.from_params({"b": "x", "a": 1, "c": 0.25, "d": True})
    assert architecture.key() == '{"a":1,"b":"x","c":0.25,"d":true}'
    assert json.loads(architecture.key()) == architecture.to_dict()


scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)


@given(
    st.dictionaries(st.text(min_size=1, max_size=8), scalars, min_size=1, max_size=6), st.randoms()
)
def test_architecture_key_and_equality_do_not_depend_on_order(params, rnd):
    names = list(params)
    rnd.shuffle(names)
    reordered = {n: params[n] for n in names}
    first, second = Architecture.from_params(params), Architecture.from_params(reordered)
    assert first.key() == second.key()
    assert first == second and hash(first) == hash(second)
    assert len({first, second}) == 1


def test_architecture_key_tells_values_and_types_apart():
    keys = {Architecture.from_params({"a": v}).key() for v in (1, 1.0, True, "1", 2)}
    assert len(keys) == 5


def test_architecture_key_ignores_float_rounding_noise():
    assert Architecture.from_params({"p": 0.1 + 0.2}) == Architecture.from_params({"p": 0.3})


def test_architecture_from_params_turns_numpy_scalars_into_python_ones():
    import numpy as np

    architecture = Architecture.from_params({"n": np.int64(3), "x": np.float32(0.5)})
    assert architecture.to_dict() == {"n": 3, "x": 0.5}
    assert type(architecture["n"]) is int and type(architecture["x"]) is float


def test_architecture_is_immutable_and_rejects_non_scalar_values():
    architecture = Architecture.from_params({"a": 1})
    with pytest.raises(TypeError):
        architecture["a"] = 2  # type: ignore[index]
    copy = architecture.to_dict()
    copy["a"] = 2
    assert architecture["a"] == 1
    with pytest.raises(ConfigError, match="'a'"):
        Architecture.from_params({"a": [1, 2]})


def test_sample_draws_only_architectures_not_yet_settled():
    """SearchSpace.sample: a random architecture outside `avoid`; None once all are in it."""
    import random

    space = SearchSpace.from_mapping({"hidden_size": [64, 128], "num_hidden_layers": {"low": 1, "high": 2}})
    everything = {Architecture({"hidden_size": h, "num_hidden_layers": n}).key()
                  for h in (64, 128) for n in (1, 2)}
    rng = random.Random(0)
    last = Architecture({"hidden_size": 128, "num_hidden_layers": 2})
    avoid = everything - {last.key()}
    assert all(space.sample(rng, avoid=avoid) == last for _ in range(5))
    assert space.sample(rng, avoid=everything) is None
    seen = {space.sample(rng).key() for _ in range(60)}
    assert seen == everything  # uniform over the space: every one drawn


def test_sample_of_a_continuous_space_stays_in_range():
    import random

    space = SearchSpace.from_mapping({"lr": {"low": 1e-5, "high": 1e-2, "log": True},
                                      "layers": {"low": 1, "high": 10_000_000}})
    rng = random.Random(1)
    for _ in range(50):
        architecture = space.sample(rng)
        assert architecture is not None and space.contains(architecture)


def _divisible(architecture):
    return architecture["hidden_size"] % architecture["num_attention_heads"] == 0


def test_sample_draws_only_valid_architectures_and_counts_them():
    """`valid` (the builder's rules: heads divide the hidden size) filters the draw; a finite
    space says how many architectures it accepts; None once every valid one is avoided."""
    import random

    space = SearchSpace.from_mapping({"hidden_size": [64, 96, 128], "num_attention_heads": [2, 3, 4]})
    valid = [a for a in space.architectures() if _divisible(a)]
    assert space.valid_count(_divisible) == len(valid) == 7 and space.size() == 9
    rng = random.Random(0)
    drawn = {space.sample(rng, valid=_divisible).key() for _ in range(80)}
    assert drawn == {a.key() for a in valid}  # every valid one, no other
    assert space.sample(rng, avoid={a.key() for a in valid}, valid=_divisible) is None


def test_sample_of_a_space_too_large_to_list_rejects_invalid_draws():
    import random

    space = SearchSpace.from_mapping({"hidden_size": {"low": 1, "high": 10_000_000},
                                      "num_attention_heads": [2, 3]})
    assert space.architectures() is None and space.valid_count(_divisible) is None
    rng = random.Random(3)
    assert all(_divisible(space.sample(rng, valid=_divisible)) for _ in range(30))
