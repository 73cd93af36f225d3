"""Search objectives: metric names, their directions, and where their values come from.

Several metrics make a true multi-objective study: the result is a Pareto front,
never a weighted sum. Built-in metrics know their direction; a metric from a user's
eval function needs `higher_is_better`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from autodistill.errors import ConfigError


@dataclass(frozen=True)
class Objective:
    name: str          # as the user wrote it and the dashboard shows it
    key: str           # the key of the eval function's result that holds the value
    direction: str     # "maximize" | "minimize"


# metric -> (result key, higher is better)
BUILTIN_METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("accuracy", True),
    "latency": ("latency_p50_ms", False),
    "latency_ms": ("latency_p50_ms", False),
    "latency_p90": ("latency_p90_ms", False),
    "params": ("params", False),
    "size_mb": ("size_mb", False),
    "model_size": ("size_mb", False),
}


def objectives_for(metrics: Sequence[str], higher_is_better: Sequence[bool] | None) -> list[Objective]:
    if not metrics:
        raise ConfigError("search.metrics is empty; name at least one metric, e.g. [accuracy, latency]")
    if higher_is_better is not None and len(higher_is_better) != len(metrics):
        raise ConfigError(
            f"search.higher_is_better has {len(higher_is_better)} entries but search.metrics has "
            f"{len(metrics)}; give one direction per metric"
        )
    if len(set(metrics)) != len(metrics):
        raise ConfigError(f"search.metrics names a metric twice: {list(metrics)}")
    out = []
    for i, name in enumerate(metrics):
        key, default = BUILTIN_METRICS.get(name, (name, None))
        up = higher_is_better[i] if higher_is_better is not None else default
        if up is None:
            raise ConfigError(
                f"metric {name!r} has no direction; give search.higher_is_better (one true/false "
                f"per metric). Metrics with a known direction: {', '.join(BUILTIN_METRICS)}"
            )
        out.append(Objective(name, key, "maximize" if up else "minimize"))
    return out


def objective_values(objectives: Sequence[Objective], result: Mapping[str, float]) -> list[float]:
    """The values to tell the study, in objective order; a missing key names what was returned."""
    values = []
    for o in objectives:
        if o.key not in result:
            raise ConfigError(
                f"the eval function returned no {o.key!r} for metric {o.name!r}; it returned "
                f"{sorted(result)}"
            )
        values.append(float(result[o.key]))
    return values
