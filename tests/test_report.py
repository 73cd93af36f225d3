"""Reports of a study: the Pareto front and history figures, report.md, the terminal table's
teacher row; on a hand-made study (exact content) and after a real tiny search (the CLI)."""

from __future__ import annotations

import optuna
import pytest
from matplotlib.image import imread
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from autodistill.cli import main
from autodistill.report import HISTORY_PNG, PARETO_PNG, SUMMARY_MD, write_report
from autodistill.report.figures import history_figure, pareto_axes, pareto_figure
from autodistill.study.pareto import pareto_front
from autodistill.study.record import SEARCH_COMMAND, TEACHER

optuna.logging.set_verbosity(optuna.logging.WARNING)

TEACHER_FIGURES = {"accuracy": 0.97, "latency_p50_ms": 24.0, "params": 22_700_000, "test_accuracy": 0.96}
HIDDEN = CategoricalDistribution((64, 128, 192, 256))
# (accuracy, latency): trials 0, 2, 4 are the front; 1 and 3 are dominated
POINTS = [(0.95, 6.0), (0.90, 7.0), (0.93, 3.0), (0.85, 5.0), (0.80, 1.5)]


def _add(study: optuna.Study, values=None, state=TrialState.COMPLETE, hidden=128, **attrs) -> None:
    user_attrs = {"architecture": {"hidden_size": hidden}, **attrs}
    if values is not None:
        user_attrs.update(accuracy=values[0], latency_p50_ms=values[1], params=hidden * 1000)
    study.add_trial(create_trial(state=state, values=list(values) if state == TrialState.COMPLETE else None,
                                 params={"hidden_size": hidden}, distributions={"hidden_size": HIDDEN},
                                 user_attrs=user_attrs))


@pytest.fixture
def study() -> optuna.Study:
    """Five trained students, a repeat of the best one, a failed and a pruned trial."""
    study = optuna.create_study(study_name="hand", directions=["maximize", "minimize"])
    study.set_metric_names(["accuracy", "latency"])
    study.set_user_attr(TEACHER, TEACHER_FIGURES)
    study.set_user_attr(SEARCH_COMMAND, "autodistill search hand.yaml")
    for i, values in enumerate(POINTS):
        _add(study, values, hidden=HIDDEN.choices[i % 4], test_accuracy=values[0] - 0.01)
    _add(study, POINTS[0], repeat_of=0)                        # trial 5
    _add(study, state=TrialState.FAIL, failure_reason="boom")  # trial 6
    _add(study, state=TrialState.PRUNED, screened_reason="latency 30 > 20")  # trial 7
    return study


def _texts(ax) -> set[str]:
    return {t.get_text() for t in ax.texts}


def test_the_front_of_the_hand_made_study_is_what_the_figures_mark(study):
    assert [t.number for t in pareto_front(study)] == [0, 2, 4]


def test_pareto_figure_joins_the_front_labels_every_student_and_stars_the_teacher(study):
    ax = pareto_figure(study, TEACHER_FIGURES).axes[0]
    assert _texts(ax) == {"0", "1", "2", "3", "4", "teacher"}  # the repeat (5) is drawn as trial 0
    (front_line,) = ax.lines
    # accuracy up the y axis against latency along x, joined in latency order
    assert list(front_line.get_xdata()) == [1.5, 3.0, 6.0]
    assert list(front_line.get_ydata()) == [0.80, 0.93, 0.95]
    teacher = next(c for c in ax.collections if c.get_label() == "teacher")
    assert teacher.get_offsets().tolist() == [[24.0, 0.97]]
    others = next(c for c in ax.collections if c.get_label() == "other students")
    assert sorted(map(tuple, others.get_offsets().tolist())) == [(5.0, 0.85), (7.0, 0.90)]
    assert ax.get_xlabel() == "latency (ms, lower is better)"
    assert ax.get_ylabel() == "accuracy (higher is better)"
    assert "3 of 5 trained students" in ax.get_title()


def test_pareto_axes_put_the_maximised_objective_up_whatever_the_order():
    assert pareto_axes(["maximize", "minimize"]) == (1, 0)
    assert pareto_axes(["minimize", "maximize"]) == (0, 1)
    assert pareto_axes(["minimize", "minimize"]) == (1, 0)


def test_history_figure_has_a_panel_per_objective_with_the_front_and_the_teacher(study):
    fig = history_figure(study, TEACHER_FIGURES)
    accuracy, latency = fig.axes
    for ax, column, teacher in ((accuracy, 0, 0.97), (latency, 1, 24.0)):
        front = next(c for c in ax.collections if c.get_label() == "Pareto front")
        assert front.get_offsets().tolist() == [[n, POINTS[n][column]] for n in (0, 2, 4)]
        assert _texts(ax) == {"0", "2", "4"}
        (line,) = [artist for artist in ax.lines if artist.get_label() == "teacher"]
        assert list(line.get_ydata()) == [teacher, teacher]
    assert latency.get_xlabel() == "trial number"


def _png_size(path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)  # matplotlib reads it back: a whole, valid PNG
    return image.shape[1], image.shape[0]


def test_write_report_writes_two_pngs_and_a_markdown_table_with_the_teacher_row(study, tmp_path):
    files = write_report(study, tmp_path / "out")
    assert files.paths() == [tmp_path / "out" / name for name in (PARETO_PNG, HISTORY_PNG, SUMMARY_MD)]
    width, height = _png_size(files.pareto_png)
    assert width >= 600 and height >= 400
    width, height = _png_size(files.history_png)
    assert width >= 600 and height >= 500
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left
    text = files.summary.read_text()
    lines = text.splitlines()
    teacher = next(line for line in lines if line.startswith("| teacher |"))
    assert "| 0.97 | 24 | 0.96 | 22,700,000 | 1.0x | 100.0% |" in teacher
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in lines if line.startswith("| ")}
    assert {"0", "2", "4"} <= set(rows) and not {"1", "3", "5"} & set(rows)
    # speed-up: 24 ms over the student's latency; retention: its accuracy over 0.97
    assert rows["0"].endswith("| 4.0x | 97.9% |") and rows["2"].endswith("| 8.0x | 95.9% |")
    assert rows["4"].endswith("| 16.0x | 82.5% |")
    assert "trials: 8 (6 complete, 1 failed, 1 pruned)" in text
    assert "`autodistill search hand.yaml`" in text
    assert f"]({PARETO_PNG})" in text and f"]({HISTORY_PNG})" in text


def test_a_single_objective_study_gets_the_history_but_no_pareto_plane(tmp_path):
    study = optuna.create_study(study_name="one", direction="maximize")
    for value in (0.5, 0.7):
        study.add_trial(create_trial(value=value, user_attrs={"accuracy": value}))
    files = write_report(study, tmp_path)
    assert files.pareto_png is None and not (tmp_path / PARETO_PNG).exists()
    assert _png_size(files.history_png)[0] >= 600
    assert PARETO_PNG not in files.summary.read_text()


def test_a_study_without_trained_students_still_gets_a_report(tmp_path):
    study = optuna.create_study(study_name="empty", directions=["maximize", "minimize"])
    _add(study, state=TrialState.PRUNED, screened_reason="too slow")
    files = write_report(study, tmp_path)
    assert "no trained student yet" in _texts(pareto_figure(study, None).axes[0])
    assert all(p.exists() for p in files.paths())
    assert "No trained student yet." in files.summary.read_text()


# -- after a real tiny search, through the command line ------------------------------------

@pytest.fixture
def searched(finished_search):
    return finished_search


def test_the_search_writes_the_report_at_its_end(searched):
    out, _ = searched
    for name in (PARETO_PNG, HISTORY_PNG, SUMMARY_MD):
        assert (out / name).stat().st_size > 0, name
    assert "| teacher |" in (out / SUMMARY_MD).read_text()


def test_report_command_writes_into_the_output_dir_and_names_the_search_command(searched, tmp_path, capsys):
    out, config = searched
    capsys.readouterr()
    assert main(["report", "--storage", f"sqlite:///{out / 'study.db'}", "--output-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for name in (PARETO_PNG, HISTORY_PNG, SUMMARY_MD):
        assert str(tmp_path / name) in printed
    text = (tmp_path / SUMMARY_MD).read_text()
    assert f"`autodistill search {config} --quiet`" in text
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    for trial in pareto_front(study):
        assert f"\n| {trial.number} | " in text


def test_report_with_only_a_storage_asks_for_a_folder(searched, capsys):
    out, _ = searched
    assert main(["report", "--storage", f"sqlite:///{out / 'study.db'}"]) == 2
    assert "--output-dir DIR" in capsys.readouterr().err


def test_show_has_the_teacher_row_and_each_students_speedup_and_retention(searched, capsys):
    out, config = searched
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    teacher = study.user_attrs[TEACHER]
    capsys.readouterr()
    assert main(["show", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-2:] == ["speed-up", "retention"]
    assert lines[2].startswith("teacher") and lines[2].split()[-2:] == ["1.0x", "100.0%"]
    front = pareto_front(study)
    assert front and len(lines) == 3 + len(front)
    for line, trial in zip(lines[3:], front):
        attrs = trial.user_attrs
        speedup = attrs.get("speedup") or teacher["latency_p50_ms"] / attrs["latency_p50_ms"]
        assert line.split()[0] == str(trial.number)
        assert line.split()[-2:] == [f"{speedup:.1f}x", f"{100 * attrs['accuracy'] / teacher['accuracy']:.1f}%"]
