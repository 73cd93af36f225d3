"""A study in Markdown: what was searched, the Pareto table with the teacher's row, the figures.

The table has the terminal table's cells (`table_cells`): the teacher first, then each
student on the front with its speed-up and accuracy retention against the teacher.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from autodistill.objectives import LATENCY, LATENCY_P50
from autodistill.report.table import table_cells
from autodistill.study.pareto import FrontRow
from autodistill.study.record import StudyRecord
from autodistill.study.trials import ALONE
from autodistill.tables import markdown_table


def _trial_counts(study: optuna.Study) -> str:
    states = Counter("failed" if t.state == TrialState.FAIL else t.state.name.lower()
                     for t in study.get_trials(deepcopy=False))
    detail = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return f"{sum(states.values())} ({detail})" if states else "0"


def _data_line(data: Mapping[str, Any]) -> str:
    sizes = data.get("sizes") or {}
    parts = [f"{name} {n}" for name, n in sizes.items() if n is not None]
    files = [f"`{data[k]}`" for k in ("train_file", "validation_file", "test_file") if data.get(k)]
    text = ", ".join(parts) + " examples" if parts else "recorded"
    return text + (f" ({', '.join(files)})" if files else "")


def _latency_line(teacher: Mapping[str, Any]) -> str:
    """How the latencies were made: at the reference, and the teacher's paired median beside it
    (far apart: the study started on a busy machine, and every latency is scaled alike)."""
    line = (f"latency: each student's time at the teacher's reference latency, "
            f"{teacher[LATENCY.key]:.4g} ms (its median when the study started), from the ratio of "
            f"their fastest calls timed together")
    if ALONE in teacher:  # teacher_reference: the median of its paired timings
        line += f"; timed with the students, the teacher's median was {teacher[LATENCY_P50.key]:.4g} ms"
    return line


def summary_markdown(study: optuna.Study, rows: Sequence[FrontRow], *, metric_names: Sequence[str],
                     teacher: Mapping[str, Any] | None, figures: Sequence[tuple[str, str]]) -> str:
    """The report's text; `figures` are (title, file name) pairs next to the Markdown file."""
    directions = [d.name.lower() for d in study.directions]
    recorded = StudyRecord.of(study)
    facts = [
        "objectives: " + ", ".join(f"{n} ({d})" for n, d in zip(metric_names, directions)),
        (f"trials: {_trial_counts(study)}; the Pareto front holds {len(rows)} "
         f"student{'s' if len(rows) != 1 else ''}"),
    ]
    if recorded.teacher_model:
        facts.append(f"teacher: `{recorded.teacher_model}`")
    if isinstance(recorded.data, Mapping):
        facts.append(f"data: {_data_line(recorded.data)}")
    if recorded.search_command:
        facts.append(f"search command: `{recorded.search_command}`")
    if teacher and teacher.get(LATENCY.key) is not None:
        facts.append(_latency_line(teacher))
    header, lines = table_cells(rows, metric_names=metric_names, teacher=teacher)
    parts = [
        f"# Search report: study `{study.study_name}`",
        "\n".join(f"- {fact}" for fact in facts),
        "## Pareto front",
        ("The teacher's row is the reference: speed-up is the teacher's latency over the "
         "student's, retention the student's validation accuracy over the teacher's. "
         "Architectures were chosen on the validation split; test accuracy is reported only."),
        *([markdown_table(header, lines)] if rows or teacher else []),
        *([] if rows else ["No trained student yet."]),
        ("Export a student with `autodistill export ... --trial N --out DIR`, or by a rule: "
         "`--best fastest --min-retention 0.97`."),
    ]
    if figures:
        parts += ["## Figures", *(f"![{title}]({name})" for title, name in figures)]
    return "\n\n".join(parts) + "\n"
