"""The Pareto front: an independent non-dominance check, Optuna's front, rows, table, JSON."""

from __future__ import annotations

import json
import random

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from autodistill.errors import ConfigError
from autodistill.report.pareto_json import write_pareto_json
from autodistill.report.table import format_table, table_cells
from autodistill.study.pareto import FrontRow, front_rows, non_dominated, pareto_front

optuna.logging.set_verbosity(optuna.logging.WARNING)

DIRS = ["maximize", "minimize"]
TEACHER = {"accuracy": 0.97, "latency_p50_ms": 24.0, "params": 22_700_000}
HIDDEN = CategoricalDistribution((64, 128, 192, 256))
LAYERS = CategoricalDistribution((1, 2, 3, 4))


# --- non_dominated on hand-made points ------------------------------------------------

def test_non_dominated_two_maximised_objectives():
    points = [(1, 1), (2, 2), (3, 1), (1, 3), (2, 1)]
    # (1,1) and (2,1) are dominated by (2,2) / (3,1)
    assert non_dominated(points, ["maximize", "maximize"]) == [1, 2, 3]


def test_non_dominated_mixed_directions():
    # (accuracy up, latency down)
    points = [(0.90, 5.0), (0.95, 10.0), (0.85, 2.0), (0.80, 3.0), (0.95, 12.0), (0.90, 6.0)]
    assert non_dominated(points, DIRS) == [0, 1, 2]
    # flipping the directions flips what is good
    assert non_dominated(points, ["minimize", "maximize"]) == [3, 4, 5]


def test_equal_points_on_the_front_are_all_kept_and_equal_dominated_ones_all_dropped():
    points = [(0.9, 5.0), (0.9, 5.0), (0.8, 6.0), (0.8, 6.0), (0.7, 1.0)]
    assert non_dominated(points, DIRS) == [0, 1, 4]


def test_a_tie_on_one_objective_still_dominates_when_better_on_the_other():
    assert non_dominated([(0.9, 5.0), (0.9, 4.0)], DIRS) == [1]
    assert non_dominated([(0.9, 5.0), (0.8, 5.0)], DIRS) == [0]


def test_non_dominated_single_objective_and_empty():
    assert non_dominated([(3,), (1,), (3,), (2,)], ["maximize"]) == [0, 2]
    assert non_dominated([], DIRS) == []


def test_non_dominated_accepts_optuna_directions():
    study = optuna.create_study(directions=DIRS)
    assert non_dominated([(0.9, 5.0), (0.8, 6.0)], study.directions) == [0]


def test_non_dominated_rejects_bad_input():
    with pytest.raises(ConfigError, match="maximise"):
        non_dominated([(1.0,)], ["maximise"])
    with pytest.raises(ConfigError, match="point 1 has 1 values but there are 2 directions"):
        non_dominated([(1.0, 2.0), (1.0,)], DIRS)


# --- a real 2-objective study ---------------------------------------------------------

def _add(study: optuna.Study, acc: float, lat: float, *, state=TrialState.COMPLETE,
         hidden: int = 128, layers: int = 2, **attrs) -> None:
    user_attrs = {"architecture": {"hidden": hidden, "layers": layers}, "accuracy": acc,
                  "latency_p50_ms": lat, "params": hidden * hidden * layers * 12, **attrs}
    study.add_trial(create_trial(
        state=state, values=[acc, lat] if state == TrialState.COMPLETE else None,
        params={"hidden": hidden, "layers": layers},
        distributions={"hidden": HIDDEN, "layers": LAYERS}, user_attrs=user_attrs))


@pytest.fixture
def study() -> optuna.Study:
    """30 random COMPLETE trials (coarse values, so ties happen) plus failed/pruned ones."""
    rng = random.Random(7)
    study = optuna.create_study(directions=DIRS)
    for _ in range(30):
        hidden, layers = rng.choice(HIDDEN.choices), rng.choice(LAYERS.choices)
        acc = round(rng.uniform(0.80, 0.97), 2)
        lat = round(rng.uniform(1.0, 10.0), 0)
        _add(study, acc, lat, hidden=hidden, layers=layers)
    _add(study, 0.0, 0.0, state=TrialState.FAIL)
    _add(study, 0.0, 0.0, state=TrialState.PRUNED)
    return study


def _complete(study):
    return study.get_trials(states=(TrialState.COMPLETE,))


def test_front_equals_the_independent_non_dominated_set(study):
    trials = _complete(study)
    expected = {trials[i].number for i in non_dominated([t.values for t in trials], DIRS)}
    front = pareto_front(study)
    assert 1 < len(front) < len(trials)  # a real front, neither one point nor everything
    assert {t.number for t in front} == expected
    assert all(t.state == TrialState.COMPLETE for t in front)


def test_front_is_sorted_best_first_on_objective_zero(study):
    accs = [t.values[0] for t in pareto_front(study)]
    assert accs == sorted(accs, reverse=True)
    minimise_first = optuna.create_study(directions=["minimize", "maximize"])
    for lat, acc in [(5.0, 0.9), (2.0, 0.8), (9.0, 0.95)]:
        minimise_first.add_trial(create_trial(values=[lat, acc]))
    assert [t.values[0] for t in pareto_front(minimise_first)] == [2.0, 5.0, 9.0]


def test_repeat_of_trials_are_dropped_from_the_front(study):
    best = max(_complete(study), key=lambda t: (t.values[0], -t.values[1]))
    _add(study, best.values[0], best.values[1], repeat_of=best.number)  # an exact copy
    repeat = study.trials[-1].number
    assert repeat in {t.number for t in study.best_trials}  # Optuna keeps both
    numbers = {t.number for t in pareto_front(study)}
    assert best.number in numbers and repeat not in numbers


def test_single_objective_and_empty_studies():
    assert pareto_front(optuna.create_study(directions=DIRS)) == []
    single = optuna.create_study(direction="maximize")
    assert pareto_front(single) == []
    for v in (0.5, 0.9, 0.7):
        single.add_trial(create_trial(value=v))
    assert [t.values for t in pareto_front(single)] == [[0.9]]


def test_front_rows_compute_speedup_and_retention():
    study = optuna.create_study(directions=DIRS)
    _add(study, 0.95, 3.0, hidden=192, layers=2, test_accuracy=0.94)
    _add(study, 0.90, 1.5, hidden=128, layers=1)
    _add(study, 0.85, 4.0)  # dominated
    rows = front_rows(study, teacher=TEACHER)
    assert [r.number for r in rows] == [0, 1]
    top = rows[0]
    assert top.speedup == pytest.approx(24.0 / 3.0)
    assert top.retention == pytest.approx(0.95 / 0.97)
    assert (top.accuracy, top.latency_ms, top.test_accuracy) == (0.95, 3.0, 0.94)
    assert top.architecture == {"hidden": 192, "layers": 2} and top.values == (0.95, 3.0)
    assert rows[1].test_accuracy is None and rows[1].speedup == pytest.approx(16.0)
    assert set(top.to_dict()) == {"number", "values", "architecture", "accuracy", "latency_ms",
                                  "params", "test_accuracy", "perplexity", "eager_latency_ms", "eager_accuracy",
                                  "speedup", "retention"}
    no_teacher = front_rows(study)
    assert no_teacher[0].speedup is None and no_teacher[0].retention is None


def test_a_trials_paired_speedup_wins_over_the_study_teacher_latency():
    """Where the teacher was timed with the student (attr `speedup`), the row shows that ratio."""
    study = optuna.create_study(directions=DIRS)
    _add(study, 0.95, 3.0, speedup=9.5, teacher_latency_p50_ms=28.5)
    (row,) = front_rows(study, teacher=TEACHER)
    assert row.speedup == pytest.approx(9.5)  # not 24 / 3


def _rows() -> list[FrontRow]:
    return [
        FrontRow(number=12, values=(0.944, 2.86), architecture={"hidden": 192, "layers": 2},
                 accuracy=0.944, latency_ms=2.86, params=6_100_000, speedup=8.4,
                 retention=0.9732),
        FrontRow(number=3, values=(0.9, 1.5), architecture={"hidden": 128, "layers": 1},
                 accuracy=0.9, latency_ms=1.5, params=None, speedup=None, retention=None),
    ]


def test_format_table_teacher_first_then_rows_with_x_and_percent_columns():
    table = format_table(_rows(), metric_names=["accuracy", "latency_ms"], teacher=TEACHER)
    lines = table.splitlines()
    assert lines[0].split() == ["trial", "architecture", "accuracy", "latency_ms", "params",
                                "speed-up", "retention"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].startswith("teacher") and "24" in lines[2] and "22,700,000" in lines[2]
    assert "1.0x" in lines[2] and "100.0%" in lines[2]
    assert lines[3].split() == ["12", "hidden=192", "layers=2", "0.944", "2.86", "6,100,000",
                                "8.4x", "97.3%"]
    assert lines[4].split()[:3] == ["3", "hidden=128", "layers=1"] and lines[4].endswith("-")
    assert len(lines) == 5
    # aligned: the speed-up column ends at the same place on every line
    end = lines[0].index("speed-up") + len("speed-up")
    assert lines[2][:end].endswith("1.0x") and lines[3][:end].endswith("8.4x")


def test_teacher_metric_looked_up_by_objective_alias():
    """An objective named `latency` shows the teacher's `latency_p50_ms`."""
    lines = format_table(_rows(), metric_names=["accuracy", "latency"], teacher=TEACHER)
    assert lines.splitlines()[2].split()[1:4] == ["-", "0.97", "24"]


def test_format_table_without_teacher_and_with_wrong_metric_count():
    lines = format_table(_rows(), metric_names=["accuracy", "latency_ms"]).splitlines()
    assert lines[2].startswith("12") and not any(line.startswith("teacher") for line in lines)
    with pytest.raises(ConfigError, match="metric_names"):
        format_table(_rows(), metric_names=["accuracy"])


def test_write_pareto_json_round_trips(tmp_path, study):
    rows = front_rows(study, teacher=TEACHER)
    target = tmp_path / "out" / "pareto.json"
    written = write_pareto_json(target, rows, metric_names=["accuracy", "latency_ms"],
                                directions=study.directions, teacher=TEACHER)
    assert written == target and not target.with_suffix(".tmp").exists()
    with open(target, encoding="utf-8") as fh:
        doc = json.load(fh)
    assert set(doc) == {"metrics", "directions", "teacher", "front"}
    assert doc["metrics"] == ["accuracy", "latency_ms"] and doc["directions"] == DIRS
    assert doc["teacher"] == TEACHER
    assert [r["number"] for r in doc["front"]] == [r.number for r in rows]
    assert doc["front"][0] == json.loads(json.dumps(rows[0].to_dict()))


def test_write_pareto_json_replaces_and_writes_strict_json(tmp_path):
    target = tmp_path / "pareto.json"
    target.write_text("old")
    nan_row = FrontRow(number=0, values=(float("nan"), 1.0), accuracy=float("nan"))
    write_pareto_json(target, [nan_row], metric_names=["a", "b"], directions=DIRS)
    doc = json.loads(target.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert doc["teacher"] is None and doc["front"][0]["accuracy"] is None
    with pytest.raises(ConfigError, match="directions"):
        write_pareto_json(target, [], metric_names=["a"], directions=DIRS)


def test_the_teacher_row_takes_the_median_of_the_teacher_latencies_timed_with_students():
    """teacher_reference: the study's teacher figures, latency replaced by the median of the
    paired measurements (what the speed-ups were computed against); unchanged without them."""
    from autodistill.study.record import TEACHER
    from autodistill.study.trials import teacher_reference

    study = optuna.create_study(directions=DIRS)
    assert teacher_reference(study) is None
    study.set_user_attr(TEACHER, {"accuracy": 0.97, "latency_p50_ms": 35.0})
    assert teacher_reference(study) == {"accuracy": 0.97, "latency_p50_ms": 35.0}
    for lat, teacher_lat in ((3.0, 20.0), (2.0, 40.0), (1.0, 24.0)):
        _add(study, 0.9, lat, teacher_latency_p50_ms=teacher_lat)
    reference = teacher_reference(study)
    assert reference["latency_p50_ms"] == 24.0 and reference["latency_p50_ms_alone"] == 35.0
    assert reference["accuracy"] == 0.97


def test_a_reported_figure_gets_a_column_where_recorded_and_never_twice():
    """Perplexity (masked LM) is shown beside the objectives when a row or the teacher records
    it, as the catalogue formats it; a study without it has no such column; an objective is
    not repeated as a reported column."""
    with_perplexity = [FrontRow(number=4, values=(0.5, 2.0), accuracy=0.5, latency_ms=2.0,
                                reported={"perplexity": 12.3456})]
    header, (teacher, row) = table_cells(with_perplexity, metric_names=["accuracy", "latency"],
                                         teacher={"accuracy": 0.6, "latency_ms": 20.0, "perplexity": 9.0})
    column = header.index("perplexity")
    assert (teacher[column], row[column]) == ("9", "12.35")
    assert "perplexity" not in table_cells(_rows(), metric_names=["accuracy", "latency"], teacher=TEACHER)[0]
    as_objective = table_cells(with_perplexity, metric_names=["perplexity", "latency"])[0]
    assert as_objective.count("perplexity") == 1
