"""Latency-first screening: an architecture over a budget (`search.constraints`) is pruned before
it is trained, on the figures its untrained student costs (latency, parameters, size).

The figures are the ones the objectives and the Pareto table show (each read through its
`Metric`); `min_speedup` reads the paired speed-up the cost function measured (teacher and
student timed call for call), else the study's teacher latency over the student's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autodistill.errors import ConfigError
from autodistill.objectives import LATENCY, PARAMS, SIZE
from autodistill.study.pareto import speedup

# constraint name -> the figure it bounds
CONSTRAINTS = {"latency_ms": LATENCY, "params": PARAMS, "size_mb": SIZE}


def broken_budgets(constraints: Mapping[Any, float], cost: Mapping[str, Any],
                   teacher_latency_ms: float | None) -> str:
    """Why `cost` breaks `constraints` ('' when it does not), one clause per broken budget."""
    limits = dict(constraints)
    least = limits.pop("min_speedup", None)
    broken = _over(cost, limits)
    if least is not None:
        speed = speedup(cost, {LATENCY.key: teacher_latency_ms})
        if speed is None and teacher_latency_ms is None:
            raise ConfigError("search.constraints.min_speedup needs the teacher's latency")
        latency = LATENCY.value(cost)
        if speed is not None and speed < least:
            broken.insert(0, f"speed-up {speed:.3g}x < {least:.3g}x (latency {latency:.4g} ms, "
                             f"teacher {latency * speed:.4g} ms)")
    return "; ".join(broken)


def _over(cost: Mapping[str, Any], limits: Mapping[str, float]) -> list[str]:
    values = {name: CONSTRAINTS[name].value(cost) for name in limits}
    return [f"{name} {values[name]:.4g} > {limit:.4g}" for name, limit in limits.items()
            if values[name] is not None and values[name] > limit]


__all__ = ["CONSTRAINTS", "broken_budgets"]
