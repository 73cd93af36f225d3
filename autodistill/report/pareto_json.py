"""`pareto.json`: the front as a JSON document, for programs (the table is for people)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autodistill.atomic_file import write_atomically
from autodistill.errors import ConfigError
from autodistill.study.pareto import FrontRow, direction_name
from autodistill.study.record import json_safe


def write_pareto_json(path: str | Path, rows: Sequence[FrontRow], *,
                      metric_names: Sequence[str], directions: Sequence[Any],
                      teacher: Mapping[str, Any] | None = None) -> Path:
    """Write {"metrics", "directions", "teacher", "front"} atomically (strict JSON: a
    non-finite figure is null); return the path."""
    path = Path(path)
    directions = [direction_name(d) for d in directions]
    if len(directions) != len(metric_names):
        raise ConfigError(
            f"{len(metric_names)} metric names but {len(directions)} directions; "
            f"give one direction per metric"
        )
    document = json_safe({
        "metrics": list(metric_names),
        "directions": directions,
        "teacher": dict(teacher) if teacher is not None else None,
        "front": [row.to_dict() for row in rows],
    })
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
