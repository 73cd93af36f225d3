"""Search objectives: metric names, their directions, and where their values come from.

Several metrics make a true multi-objective study: the result is a Pareto front,
never a weighted sum. Built-in metrics (`METRICS`) know their direction, unit and the user
attribute that holds them; a metric from a user's eval function needs `higher_is_better`.

Every reader of a figure (objective values, screening, the Pareto table, pareto.json,
`show`, the report, the model card) takes it through its `Metric`, so they all see one
number. The latency objective is the student's latency at the study's reference teacher
latency (`latency_ms`, autodistill/study/task.py), not its raw median (`latency_p50_ms`,
kept as an attribute): a trial timed while another process loads the machine keeps its
place on the front. Studies recorded before that, and user cost or eval functions, hold
latency as `latency_p50_ms`; the metric reads that where `latency_ms` is absent.

Why that figure and not the speed-up itself: `latency_ms` = reference / speed-up, with one
reference per study (the teacher row, measured when the study starts), so its order is the
paired speed-ups' order (the figure robust to load), while the objective stays `latency` in
milliseconds: configs, the dashboard, `search.constraints.latency_ms` and
`--max-latency-ms` keep their meaning, and studies recorded before read as they did. A
study started on a busy machine scales every latency by one factor: order and speed-ups
hold, and report.md shows the teacher's median timed with the students beside the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from autodistill.errors import ConfigError

Direction = Literal["maximize", "minimize"]  # an Optuna study direction


@dataclass(frozen=True)
class Metric:
    """A figure a trial (or the teacher's row) records: the attribute that holds it, which way
    is better, its unit, how it is written (`fmt`, a format spec; `label` in tables and the
    model card), and the keys it is read from where that key is absent (older studies, user
    functions). The one catalogue of them: `METRICS`; every reader goes through it."""

    name: str
    key: str
    higher_is_better: bool | None
    unit: str = ""                   # "ms", "MB" or "" (a count, a fraction)
    aliases: tuple[str, ...] = ()    # other names a config may give it
    fallback_keys: tuple[str, ...] = ()
    label: str = ""                  # how a table or the model card names it (default: its name)
    fmt: str = ".4g"

    def value(self, record: Mapping[str, Any]) -> Any:
        """The figure in `record` (a trial's figures, a cost or eval result, the teacher's
        row), or None when it holds none."""
        for key in (self.key, *self.fallback_keys):
            if record.get(key) is not None:
                return record[key]
        return None

    def format(self, value: Any) -> str:
        """`value` as tables and the model card write it; '-' for none."""
        if value is None or isinstance(value, str):
            return value or "-"
        return format(float(value), self.fmt)

    @property
    def title(self) -> str:
        """'latency p50 (ms)': its label with its unit."""
        return (self.label or self.name) + (f" ({self.unit})" if self.unit else "")

    @property
    def direction(self) -> Direction | None:
        return None if self.higher_is_better is None else "maximize" if self.higher_is_better else "minimize"


ACCURACY = Metric("accuracy", "accuracy", True, label="validation accuracy")
TEST_ACCURACY = Metric("test_accuracy", "test_accuracy", True, label="test accuracy")  # reported, never chosen by
# the raw median of the student's calls (kept as an attribute; the objective is LATENCY)
LATENCY_P50 = Metric("latency_p50", "latency_p50_ms", False, "ms", label="latency p50 (raw)")
LATENCY = Metric("latency", "latency_ms", False, "ms", aliases=("latency_ms",),
                 fallback_keys=(LATENCY_P50.key,), label="latency p50")
LATENCY_P90 = Metric("latency_p90", "latency_p90_ms", False, "ms",  # a tail: load shows in it, by nature
                     label="latency p90")
PARAMS = Metric("params", "params", False, label="parameters", fmt=",.0f")
SIZE = Metric("size_mb", "size_mb", False, "MB", aliases=("model_size",), label="size")
# masked LM (tasks/masked_lm.py): exp of the mean masked-token loss on the validation text
PERPLEXITY = Metric("perplexity", "perplexity", False)
TEST_PERPLEXITY = Metric("test_perplexity", "test_perplexity", False, label="test perplexity")
# with evaluation.deployment (config/deployment.py, study/task.py) the figures above are the deployed
# graph's (ONNX Runtime, int8), which the objectives rank by; the eager PyTorch module's stay beside
# them under the prefix `eager_`
EAGER = "eager_"
EAGER_ACCURACY = Metric("eager_accuracy", EAGER + ACCURACY.key, True, label="eager accuracy")
EAGER_LATENCY = Metric("eager_latency", EAGER + LATENCY.key, False, "ms", label="eager latency p50")
METRICS: tuple[Metric, ...] = (ACCURACY, TEST_ACCURACY, LATENCY, LATENCY_P50, LATENCY_P90, PARAMS, SIZE,
                               PERPLEXITY, TEST_PERPLEXITY, EAGER_ACCURACY, EAGER_LATENCY)
# figures a task reports beside the objectives: a column of their own in the Pareto table,
# pareto.json and the report wherever a study records them
REPORTED: tuple[Metric, ...] = (TEST_ACCURACY, PERPLEXITY, EAGER_LATENCY, EAGER_ACCURACY)
# what a trial's cost function measured before training: the paired `speedup` (teacher /
# student, timed in one interleaved benchmark) and `teacher_latency_p50_ms` where it paired
# them; the built-in one's `latency_ms`, the figure the study ranks by (study/task.py)
SPEEDUP = "speedup"
PAIRED_TEACHER_LATENCY = "teacher_latency_p50_ms"
_TIMED = (LATENCY_P50.key, LATENCY_P90.key, SIZE.key, SPEEDUP, PAIRED_TEACHER_LATENCY, LATENCY.key,
          "latency_min_ms", "teacher_latency_min_ms", "latency_spread", "latency_attempts")
COST_KEYS: tuple[str, ...] = (*_TIMED, PARAMS.key, *(EAGER + key for key in _TIMED))  # eager_: deployed studies


def builtin_metric(name: str) -> Metric | None:
    """The built-in metric a config names (by its name or an alias), or None."""
    return next((m for m in METRICS if name == m.name or name in m.aliases), None)


@dataclass(frozen=True)
class Objective:
    name: str          # as the user wrote it and the dashboard shows it
    metric: Metric     # where its value comes from
    direction: Direction

    @property
    def key(self) -> str:
        return self.metric.key


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
        metric = builtin_metric(name) or Metric(name, name, None)
        up = higher_is_better[i] if higher_is_better is not None else metric.higher_is_better
        if up is None:
            names = ", ".join(n for m in METRICS for n in (m.name, *m.aliases))
            raise ConfigError(
                f"metric {name!r} has no direction; give search.higher_is_better (one true/false "
                f"per metric). Metrics with a known direction: {names}"
            )
        out.append(Objective(name, metric, "maximize" if up else "minimize"))
    return out


def objective_values(objectives: Sequence[Objective], result: Mapping[str, float]) -> list[float]:
    """The values to tell the study, in objective order; a missing key names what was returned."""
    values = []
    for o in objectives:
        value = o.metric.value(result)
        if value is None:
            raise ConfigError(
                f"the eval function returned no {o.key!r} for metric {o.name!r}; it returned "
                f"{sorted(result)}"
            )
        values.append(float(value))
    return values


def trial_result(cost: Mapping[str, Any], evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's figures: the cost function's and the eval function's. Where the eval function
    gives a built-in metric under any of its keys, its figure replaces the cost function's
    (every key of that metric is dropped from the cost), so the objective and the table agree."""
    given = [m for m in METRICS if any(key in evaluation for key in (m.key, *m.fallback_keys))]
    replaced = {key for m in given for key in (m.key, *m.fallback_keys)}
    return {**{k: v for k, v in cost.items() if k not in replaced}, **evaluation}


def metric_value(record: Mapping[str, Any], name: str) -> Any:
    """A record's value of a metric named as a config names it: a built-in metric through its
    `Metric`, any other by its own key."""
    metric = builtin_metric(name)
    return metric.value(record) if metric is not None else record.get(name)
