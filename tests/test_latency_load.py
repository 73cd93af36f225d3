"""Measurements that survive a busy machine: the latency objective is the student's time at the
study's reference teacher latency (from the paired measurement), a measurement whose spread is
high is taken again, and every reader (objective, table, screening) takes the same figure."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from test_search import load, write_config
from torch import nn

from autodistill.cli import main
from autodistill.config.schema import SearchSection
from autodistill.errors import ConfigError
from autodistill.evaluation.latency import LatencySpec, measure_latencies, paired_ratio
from autodistill.objectives import LATENCY, LATENCY_P90, objective_values, objectives_for, trial_result
from autodistill.report.table import format_table
from autodistill.study.pareto import front_rows, pareto_front, speedup
from autodistill.study.record import REPEAT_OF, SCREENED_REASON
from autodistill.study.search import AutoDistillation

optuna.logging.set_verbosity(optuna.logging.WARNING)


class FakeClock:
    """A timer (ns) that makes each timed call last the next of `durations_ms`: measure_latencies
    reads it once before and once after every call."""

    def __init__(self, durations_ms: list[float]) -> None:
        self.durations = iter(durations_ms)
        self.now, self.in_call = 0, False

    def __call__(self) -> int:
        if self.in_call:
            self.now += int(next(self.durations) * 1e6)
        self.in_call = not self.in_call
        return self.now


def _interleaved(*per_model: list[float]) -> list[float]:
    """Durations in call order for models timed round by round."""
    return [d for round_ in zip(*per_model) for d in round_]


STEADY, NOISY = [1.0] * 20, [1.0, 5.0] * 10   # spreads 0 and (5 - 1) / 3 = 1.33
SPEC = LatencySpec(warmup=0, repeats=20, max_spread=0.5, max_attempts=3)
X = (torch.ones(1, 4),)


def _measure(durations: list[float], models: int = 1, spec: LatencySpec = SPEC):
    return measure_latencies([nn.Identity() for _ in range(models)], spec, example_inputs=X,
                             timer=FakeClock(durations))


# --- the repeat-on-spread rule -------------------------------------------------------------

def test_a_steady_measurement_is_taken_once_and_records_its_spread():
    (lat,) = _measure(STEADY)
    assert (lat.p50_ms, lat.spread, lat.attempts) == (1.0, 0.0, 1)


def test_a_noisy_measurement_is_taken_again_and_the_steady_one_kept():
    (lat,) = _measure(NOISY + [2.0] * 20)
    assert lat.attempts == 2 and lat.p50_ms == pytest.approx(2.0) and lat.spread == 0.0
    assert lat.min_ms == pytest.approx(1.0)   # the fastest call of every attempt


def test_always_noisy_stops_at_max_attempts_and_keeps_the_steadiest():
    wild = [1.0, 9.0] * 10   # spread (9 - 1) / 5 = 1.6
    (lat,) = _measure(wild + NOISY + wild)
    assert lat.attempts == 3 and lat.spread == pytest.approx(4 / 3) and lat.p50_ms == pytest.approx(3.0)


def test_one_noisy_model_of_a_pair_makes_both_measured_again_together():
    """The pair stays a pair: a student and its teacher come from the same attempt."""
    first = _interleaved(STEADY, NOISY)
    second = _interleaved([0.5] * 20, [4.0] * 20)
    student, teacher = _measure(first + second, models=2)
    assert (student.attempts, teacher.attempts) == (2, 2)
    assert (student.p50_ms, teacher.p50_ms) == (pytest.approx(0.5), pytest.approx(4.0))


def test_max_attempts_one_measures_once_whatever_the_spread():
    (lat,) = _measure(NOISY, spec=LatencySpec(warmup=0, repeats=20, max_attempts=1))
    assert lat.attempts == 1 and lat.spread > 1


@pytest.mark.parametrize("field, value", [("max_attempts", 0), ("max_attempts", 1.5), ("max_spread", 0),
                                          ("max_spread", True), ("max_spread", "wide")])
def test_bad_repeat_settings_name_the_field_and_value(field, value):
    with pytest.raises(ConfigError, match=rf"{field} must be .* but got {field}={value!r}"):
        LatencySpec(**{field: value})


# --- normalisation -----------------------------------------------------------------------

def test_a_load_that_slows_student_and_teacher_alike_leaves_the_ratio_unchanged():
    quiet = _measure(_interleaved([2.0] * 20, [20.0] * 20), models=2)
    busy = _measure(_interleaved([6.0] * 20, [60.0] * 20), models=2)   # three times slower
    assert [paired_ratio(*pair) for pair in (quiet, busy)] == [pytest.approx(0.1), pytest.approx(0.1)]


def test_a_load_that_cuts_most_long_calls_leaves_the_ratio_where_the_fastest_calls_put_it():
    """Busy loops cut 19 of the student's 20 calls (3 -> 30 ms) and none of the short teacher's:
    the medians' ratio reads 30, the ratio of the fastest calls 3."""
    student, teacher = _measure(_interleaved([30.0] * 10 + [3.0] + [30.0] * 9, [1.0] * 20), models=2)
    assert student.p50_ms / teacher.p50_ms == pytest.approx(30.0)
    assert paired_ratio(student, teacher) == pytest.approx(3.0)


def test_the_latency_metric_reads_the_figure_at_the_reference_and_old_studies_raw():
    new = {"latency_ms": 2.5, "latency_p50_ms": 111.9, "latency_p90_ms": 140.0}
    old = {"latency_p50_ms": 1.6, "latency_p90_ms": 2.0}
    assert (LATENCY.value(new), LATENCY_P90.value(new)) == (2.5, 140.0)   # a tail stays as measured
    assert (LATENCY.value(old), LATENCY_P90.value(old)) == (1.6, 2.0)
    assert LATENCY.value({}) is None
    objectives = objectives_for(["accuracy", "latency"], None)
    assert objective_values(objectives, {"accuracy": 0.9, **new}) == [0.9, 2.5]
    assert objective_values(objectives, {"accuracy": 0.9, **old}) == [0.9, 1.6]


def test_an_eval_functions_latency_replaces_the_cost_functions_figure():
    cost = {"latency_ms": 2.5, "latency_p50_ms": 3.0, "params": 10}
    result = trial_result(cost, {"accuracy": 0.5, "latency_p50_ms": 7.0})
    assert LATENCY.value(result) == 7.0 and result["params"] == 10


DIRS = ["maximize", "minimize"]
HIDDEN = CategoricalDistribution((8, 16, 32))


def _study(trials: list[dict], teacher: dict) -> optuna.Study:
    study = optuna.create_study(directions=DIRS)
    study.set_user_attr("teacher", teacher)
    for attrs in trials:
        study.add_trial(create_trial(values=[attrs["accuracy"], LATENCY.value(attrs)],
                                     params={"hidden": attrs["hidden"]}, distributions={"hidden": HIDDEN},
                                     user_attrs=attrs))
    return study


def test_table_rows_and_speedups_take_the_figure_at_the_reference():
    """A trial timed under load (raw 111.9 ms, its teacher 640 ms: 5.7x) sits where its paired
    figure puts it; the teacher row is the reference, and row speed-ups equal reference / latency."""
    teacher = {"accuracy": 0.9, "latency_ms": 17.0, "latency_p50_ms": 17.0}
    loaded = {"hidden": 32, "accuracy": 0.88, "latency_p50_ms": 111.9, "teacher_latency_p50_ms": 640.0,
              "speedup": 640.0 / 111.9, "latency_ms": 17.0 * 111.9 / 640.0}
    quiet = {"hidden": 8, "accuracy": 0.80, "latency_p50_ms": 1.6, "teacher_latency_p50_ms": 17.0,
             "speedup": 17.0 / 1.6, "latency_ms": 1.6}
    study = _study([loaded, quiet], teacher)
    rows = front_rows(study, teacher=teacher)
    assert [r.number for r in rows] == [0, 1]   # both on the front: the loaded one is not 111.9 ms
    assert rows[0].latency_ms == pytest.approx(17.0 * 111.9 / 640.0)
    for row in rows:
        assert row.speedup == pytest.approx(17.0 / row.latency_ms)
    lines = format_table(rows, metric_names=["accuracy", "latency"], teacher=teacher).splitlines()
    assert lines[2].split()[:4] == ["teacher", "-", "0.9", "17"]
    assert f"{17.0 * 111.9 / 640.0:.4g}" in lines[3]


def test_an_old_study_recorded_with_raw_latency_still_reads():
    teacher = {"accuracy": 0.9, "latency_p50_ms": 24.0}
    study = _study([{"hidden": 8, "accuracy": 0.85, "latency_p50_ms": 3.0}], teacher)
    (row,) = front_rows(study, teacher=teacher)
    assert (row.latency_ms, row.speedup) == (3.0, pytest.approx(8.0))


def _agent(tmp_path, constraints, cost, teacher_latency_ms=17.0):
    section = SearchSection(search_space={"hidden_size": [8, 16]}, search_algorithm="random", max_trials=2,
                            metrics=["accuracy", "latency"], higher_is_better=[True, False], seed=0,
                            constraints=constraints)
    return AutoDistillation(lambda a: nn.Linear(a["hidden_size"], 2), section, train_func=lambda m: m,
                            eval_func=lambda m: {"accuracy": 0.5}, cost_func=cost,
                            teacher_latency_ms=teacher_latency_ms, storage_url=f"sqlite:///{tmp_path / 's.db'}",
                            study_name="s", output_dir=tmp_path, progress=False,
                            save_func=lambda model, directory: None)


LOADED_COST = {"latency_p50_ms": 111.9, "teacher_latency_p50_ms": 640.0, "speedup": 640.0 / 111.9,
               "latency_ms": 17.0 * 111.9 / 640.0, "params": 10}


def _screened(tmp_path, constraints, cost) -> set[str]:
    """The screened reasons of a search whose every architecture costs `cost`."""
    agent = _agent(tmp_path, constraints, lambda m: cost)
    agent.search_loop()
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in agent.study.trials)
    return {t.user_attrs[SCREENED_REASON] for t in agent.study.trials if SCREENED_REASON in t.user_attrs}


def test_screening_takes_the_figure_at_the_reference_not_the_raw_time(tmp_path):
    assert _screened(tmp_path / "a", {"latency_ms": 5.0, "min_speedup": 5.0}, LOADED_COST) == set()  # 2.97 ms, 5.7x
    assert _screened(tmp_path / "b", {"latency_ms": 5.0}, {**LOADED_COST, "latency_ms": 6.0}) == {"latency_ms 6 > 5"}
    assert _screened(tmp_path / "c", {"min_speedup": 6.0}, LOADED_COST) == {
        "speed-up 5.72x < 6x (latency 2.972 ms, teacher 17 ms)"}


# --- a CPU hog beside a tiny search ---------------------------------------------------------

# three depths whose latencies differ clearly (about 0.5, 1.2 and 3 ms on this CPU)
LOAD_SPACE = {
    "      hidden_size: [8, 16, 24]\n      num_hidden_layers: {low: 1, high: 2}\n"
    "      num_attention_heads: [2, 3, 4]\n":
    "      hidden_size: [16]\n      num_hidden_layers: [1, 4, 12]\n      num_attention_heads: [2]\n",
    "    max_trials: 4\n": "    max_trials: 3\n",
    "repeats: 20, threads: 1": "repeats: 30, threads: 1",
}


def _search(workspace, out) -> list[tuple[int, bool]]:
    """Run the tiny search; the students' depths ordered by the latency objective, each marked
    on or off the Pareto front."""
    config = write_config(workspace, out, **LOAD_SPACE)
    assert main(["search", str(config), "--quiet"]) == 0
    study = load(out)
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE and REPEAT_OF not in t.user_attrs]
    assert len(trained) == 3
    for t in trained:
        assert t.values[1] == LATENCY.value(t.user_attrs) and t.user_attrs["latency_attempts"] >= 1
        assert t.values[1] == pytest.approx(LATENCY.value(study.user_attrs["teacher"]) / speedup(t.user_attrs, {}))
    front = {t.number for t in pareto_front(study)}
    return [(t.params["num_hidden_layers"], t.number in front) for t in sorted(trained, key=lambda t: t.values[1])]


def test_the_front_under_a_cpu_hog_is_ordered_as_the_unloaded_one(workspace, tmp_path):
    quiet = _search(workspace, tmp_path / "quiet")
    assert [depth for depth, _ in quiet] == [1, 4, 12]
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        loaded = _search(workspace, tmp_path / "loaded")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert loaded == quiet


def test_the_report_names_the_reference_and_the_teachers_median_timed_with_the_students(tmp_path):
    from autodistill.report import write_report

    teacher = {"accuracy": 0.9, "latency_ms": 648.0, "latency_p50_ms": 648.0}   # started on a busy machine
    trials = [{"hidden": h, "accuracy": a, "speedup": s, "latency_ms": 648.0 / s, "teacher_latency_p50_ms": t}
              for h, a, s, t in ((8, 0.8, 10.0, 16.0), (16, 0.85, 6.0, 19.0), (32, 0.88, 4.0, 17.0))]
    study = _study(trials, teacher)
    study.set_metric_names(["accuracy", "latency"])
    text = write_report(study, tmp_path).summary.read_text()
    assert ("latency: each student's time at the teacher's reference latency, 648 ms (its median when "
            "the study started)") in text
    assert "timed with the students, the teacher's median was 17 ms" in text
    assert "| teacher | - | 0.9 | 648 |" in text and "| 64.8 |" in text and "10.0x" in text


def test_an_architecture_measured_before_keeps_its_figure_at_the_reference(tmp_path):
    """A repeat of an architecture (allow_repeats) reuses the recorded cost, figure included."""
    calls = []

    def cost(model):
        calls.append(model.in_features)
        return {**LOADED_COST, "latency_ms": float(model.in_features), "params": model.in_features}

    section = SearchSection(search_space={"hidden_size": [8, 16]}, search_algorithm="random", max_trials=4,
                            metrics=["accuracy", "latency"], higher_is_better=[True, False], seed=0,
                            allow_repeats=True)
    agent = AutoDistillation(lambda a: nn.Linear(a["hidden_size"], 2), section, train_func=lambda m: m,
                             eval_func=lambda m: {"accuracy": 0.5}, cost_func=cost,
                             storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="r", output_dir=tmp_path,
                             progress=False, save_func=lambda model, directory: None)
    agent.search_loop()
    done = [t for t in agent.study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 4 and sorted(calls) == sorted(set(calls))
    assert all(t.values[1] == t.user_attrs["latency_ms"] == t.params["hidden_size"] for t in done)
