"""What a search leaves for a person to read: figures of its study and a Markdown summary.

    files = write_report(study, "runs/x")
    # runs/x/pareto_front.png, runs/x/search_history.png, runs/x/report.md

`autodistill report` writes them for any study; `autodistill search` writes them at its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from matplotlib.figure import Figure

from autodistill.atomic_file import write_atomically
from autodistill.report.figures import history_figure, pareto_figure
from autodistill.report.summary import summary_markdown
from autodistill.study.pareto import front_rows
from autodistill.study.trials import teacher_reference

PARETO_PNG = "pareto_front.png"
HISTORY_PNG = "search_history.png"
SUMMARY_MD = "report.md"


@dataclass(frozen=True)
class ReportFiles:
    pareto_png: Path | None  # None for a single-objective study: there is no plane to draw
    history_png: Path
    summary: Path

    def paths(self) -> list[Path]:
        return [p for p in (self.pareto_png, self.history_png, self.summary) if p is not None]


def _save(fig: Figure, path: Path) -> Path:
    return write_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))


def write_report(study: optuna.Study, output_dir: str | Path) -> ReportFiles:
    """Write the figures and `report.md` into `output_dir` (each written whole, then renamed)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    teacher = teacher_reference(study)
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    pareto = _save(pareto_figure(study, teacher), out / PARETO_PNG) if len(names) > 1 else None
    history = _save(history_figure(study, teacher), out / HISTORY_PNG)
    figures = [("Pareto front", PARETO_PNG)] if pareto else []
    figures.append(("Search history", HISTORY_PNG))
    text = summary_markdown(study, front_rows(study, teacher=teacher), metric_names=names,
                            teacher=teacher, figures=figures)
    summary = write_atomically(out / SUMMARY_MD, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return ReportFiles(pareto, history, summary)


__all__ = ["HISTORY_PNG", "PARETO_PNG", "SUMMARY_MD", "ReportFiles", "write_report"]
