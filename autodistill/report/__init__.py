"""What a search leaves for a person to read: the Pareto table, pareto.json, figures of its
study and a Markdown summary.

    files = write_report(study, "runs/x")
    # runs/x/pareto_front.png, runs/x/search_history.png, runs/x/report.md
    result = search_report(study, "runs/x")   # also the table (result.table) and runs/x/pareto.json

`autodistill report` writes the figures and report.md for any study; `autodistill search`
prints the table and writes all of them at its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from matplotlib.figure import Figure

from autodistill.atomic_file import write_atomically
from autodistill.report.figures import history_figure, pareto_figure
from autodistill.report.pareto_json import write_pareto_json
from autodistill.report.summary import summary_markdown
from autodistill.report.table import format_table
from autodistill.study.pareto import FrontRow, front_rows, objective_names
from autodistill.study.trials import teacher_reference

PARETO_PNG = "pareto_front.png"
HISTORY_PNG = "search_history.png"
SUMMARY_MD = "report.md"
PARETO_JSON = "pareto.json"


@dataclass(frozen=True)
class ReportFiles:
    pareto_png: Path | None  # None for a single-objective study: there is no plane to draw
    history_png: Path
    summary: Path

    def paths(self) -> list[Path]:
        return [p for p in (self.pareto_png, self.history_png, self.summary) if p is not None]


@dataclass(frozen=True)
class SearchReport:
    study: optuna.Study
    rows: list[FrontRow]
    table: str
    pareto_json: Path
    files: ReportFiles


def _save(fig: Figure, path: Path) -> Path:
    return write_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))


def write_report(study: optuna.Study, output_dir: str | Path) -> ReportFiles:
    """Write the figures and `report.md` into `output_dir` (each written whole, then renamed)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    teacher = teacher_reference(study)
    names = objective_names(study)
    pareto = _save(pareto_figure(study, teacher), out / PARETO_PNG) if len(names) > 1 else None
    history = _save(history_figure(study, teacher), out / HISTORY_PNG)
    figures = [("Pareto front", PARETO_PNG)] if pareto else []
    figures.append(("Search history", HISTORY_PNG))
    text = summary_markdown(study, front_rows(study, teacher=teacher), metric_names=names,
                            teacher=teacher, figures=figures)
    summary = write_atomically(out / SUMMARY_MD, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return ReportFiles(pareto, history, summary)


def search_report(study: optuna.Study, output_dir: str | Path) -> SearchReport:
    """The Pareto table (teacher first), pareto.json, the figures and report.md of a study."""
    teacher = teacher_reference(study)
    names = objective_names(study)
    rows = front_rows(study, teacher=teacher)
    path = write_pareto_json(Path(output_dir) / PARETO_JSON, rows, metric_names=names,
                             directions=study.directions, teacher=teacher)
    return SearchReport(study, rows, format_table(rows, metric_names=names, teacher=teacher), path,
                        write_report(study, output_dir))


__all__ = ["HISTORY_PNG", "PARETO_JSON", "PARETO_PNG", "SUMMARY_MD", "ReportFiles", "SearchReport",
           "search_report", "write_report"]
