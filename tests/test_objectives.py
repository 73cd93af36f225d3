"""Search objectives: metric names to directions and attributes, the catalogue's lookups, and the
values a trial tells the study."""

from __future__ import annotations

import pytest

from autodistill.errors import ConfigError
from autodistill.objectives import (
    METRICS,
    builtin_metric,
    metric_value,
    objective_values,
    objectives_for,
    trial_result,
)


def test_built_in_metrics_know_their_direction_and_attribute():
    accuracy, latency, size = objectives_for(["accuracy", "latency", "size_mb"], None)
    assert [o.direction for o in (accuracy, latency, size)] == ["maximize", "minimize", "minimize"]
    assert [o.key for o in (accuracy, latency, size)] == ["accuracy", "latency_ms", "size_mb"]
    assert [o.name for o in (accuracy, latency, size)] == ["accuracy", "latency", "size_mb"]


def test_higher_is_better_sets_each_direction_even_against_the_built_in_one():
    accuracy, custom = objectives_for(["accuracy", "bleu"], [False, True])
    assert (accuracy.direction, custom.direction) == ("minimize", "maximize")
    assert custom.key == "bleu" and custom.metric.higher_is_better is None  # a user metric: its own key


def test_the_catalogue_finds_metrics_by_name_and_alias_only():
    assert builtin_metric("latency") is builtin_metric("latency_ms")
    assert builtin_metric("model_size") is builtin_metric("size_mb")
    assert builtin_metric("bleu") is None and builtin_metric("Accuracy") is None
    assert all(builtin_metric(m.name) is m for m in METRICS)
    names = [n for m in METRICS for n in (m.name, *m.aliases)]
    assert len(names) == len(set(names))  # one metric per name


def test_a_metric_reads_its_fallback_key_where_its_own_is_absent():
    latency = builtin_metric("latency")
    assert latency.value({"latency_ms": 3.0, "latency_p50_ms": 5.0}) == 3.0
    assert latency.value({"latency_ms": None, "latency_p50_ms": 5.0}) == 5.0  # an older study
    assert latency.value({"accuracy": 0.9}) is None
    assert metric_value({"latency_p50_ms": 5.0}, "latency") == 5.0
    assert metric_value({"bleu": 30.0}, "bleu") == 30.0 and metric_value({}, "bleu") is None


@pytest.mark.parametrize(("metrics", "higher", "message"), [
    ([], None, r"search\.metrics is empty; name at least one metric"),
    (["accuracy", "latency"], [True], r"higher_is_better has 1 entries but search\.metrics has 2"),
    (["accuracy", "accuracy"], [True, True], r"names a metric twice: \['accuracy', 'accuracy'\]"),
    (["accuracy", "bleu"], None, r"metric 'bleu' has no direction; give search\.higher_is_better.*accuracy"),
])
def test_objectives_that_cannot_be_searched_say_which_key_to_fix(metrics, higher, message):
    with pytest.raises(ConfigError, match=message):
        objectives_for(metrics, higher)


def test_objective_values_follow_objective_order_and_name_a_missing_key():
    objectives = objectives_for(["latency", "accuracy"], None)
    assert objective_values(objectives, {"accuracy": 0.75, "latency_p50_ms": 2}) == [2.0, 0.75]
    missing = r"returned no 'accuracy' for metric 'accuracy'; it returned \['f1', 'latency_ms'\]"
    with pytest.raises(ConfigError, match=missing):
        objective_values(objectives, {"f1": 0.5, "latency_ms": 1.0})


def test_the_eval_functions_figure_of_a_metric_replaces_every_key_of_it_in_the_cost():
    cost = {"latency_ms": 4.0, "latency_p50_ms": 5.0, "params": 100}
    merged = trial_result(cost, {"latency_p50_ms": 7.0, "accuracy": 0.8})
    assert merged == {"params": 100, "latency_p50_ms": 7.0, "accuracy": 0.8}
    assert metric_value(merged, "latency") == 7.0  # the objective reads what the table shows
    assert trial_result(cost, {"accuracy": 0.8}) == {**cost, "accuracy": 0.8}
