"""What the project records on a trial and on a study: one typed record each, and the one
place that reads and writes Optuna's user attributes.

    record = TrialRecord.from_trial(frozen_trial)       # every attribute, typed
    record.value(ACCURACY), record.repeat_of, record.failure_reason
    write(trial, TrialRecord(failure_reason="ValueError: ..."))   # only the fields set
    StudyRecord.of(study).teacher                       # the study's own attributes

The stored names (the strings below) are the ones studies on disk hold: optuna-dashboard shows
them, and a study recorded by an earlier version reads as it did. A trial's `figures` are what
its cost and eval functions measured (`accuracy`, `test_accuracy`, `latency_ms`,
`latency_p50_ms`, `perplexity`, a user's own keys, ...), read through their `Metric`
(autodistill/objectives.py); every other attribute is a field of its own:

- `architecture` (and `architecture_key`, equal for equal architectures), `worker` (host:pid of
  the process that ran it), `proposed_by` (set when the search, not the advisor, chose it);
- a failed trial's `failure_reason` (and `rerun_fails_again` when its cause is in the setup,
  which costs no budget); an architecture no model can have `invalid_reason`; one over a
  latency/size budget `screened_reason`; a repeated architecture `repeat_of`; an early-stopped
  one `pruned_reason` and its `accuracy_curve` ({step: validation accuracy});
- several workers (study/claims.py, study/lost_trials.py): `twin_of` (the running trial of the
  same architecture this one waited for), `retry_of` (the lost or interrupted trial it
  retries), `retries` (how many times in a row the architecture was lost before),
  `interrupted` (Ctrl-C or SIGTERM); a retry that resumed from a lost trial's checkpoint
  (study/trial_checkpoints.py) `resumed_from_trial` and `resumed_at_step` (the global step);
- `student_path`, `train_seconds`;
- the supernet strategy (study/supernet_search.py): `fidelity` ("proxy" | "full"), a final
  trial's `proxy_trial` and `proxy_accuracy`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import optuna

from autodistill.objectives import COST_KEYS, Metric

ACCURACY_CURVE = "accuracy_curve"
ARCHITECTURE = "architecture"
ARCHITECTURE_KEY = "architecture_key"
FAILURE_REASON = "failure_reason"
INVALID_REASON = "invalid_reason"
PRUNED_REASON = "pruned_reason"
SCREENED_REASON = "screened_reason"
REPEAT_OF = "repeat_of"
STUDENT_PATH = "student_path"
TRAIN_SECONDS = "train_seconds"
WORKER = "worker"
PROPOSED_BY = "proposed_by"
TWIN_OF = "twin_of"
RETRY_OF = "retry_of"
RETRIES = "retries"
INTERRUPTED = "interrupted"
RERUN_FAILS_AGAIN = "rerun_fails_again"
RESUMED_FROM_TRIAL = "resumed_from_trial"
RESUMED_AT_STEP = "resumed_at_step"
FIDELITY = "fidelity"            # trial and study attribute: "proxy" | "full"
PROXY_TRIAL = "proxy_trial"      # a final trial's proxy twin (its number in the proxy study)
PROXY_ACCURACY = "proxy_accuracy"
# the study's own attributes
TEACHER = "teacher"                # the teacher's accuracy, latency, params, size (measured once)
TEACHER_MODEL = "teacher_model"    # where the teacher was loaded from (a folder or a hub name)
DATA = "data"                      # the data files, split sizes, label names and fingerprint
BINDING = "binding"                # fingerprints of the data and teacher the study is bound to (binding.py)
SEARCH_COMMAND = "search_command"  # the last `autodistill search` command run on the study
PROXY_STUDY = "proxy_study"        # the full study's pointer to its proxy study


def json_safe(value: Any) -> Any:
    """A value Optuna can store (JSON): no NaN, no tensors, no tuples."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


@dataclass(frozen=True)
class TrialRecord:
    """Every attribute the project writes on a trial (the module docstring); None (or empty)
    where the trial holds none. A record built for `write` holds only what is to be written."""

    figures: Mapping[str, Any] = field(default_factory=dict)
    architecture: Mapping[str, Any] | None = None
    architecture_key: str | None = None
    worker: str | None = None
    proposed_by: str | None = None
    twin_of: int | None = None
    retry_of: int | None = None
    retries: int | None = None
    interrupted: bool | None = None
    resumed_from_trial: int | None = None
    resumed_at_step: int | None = None
    failure_reason: str | None = None
    rerun_fails_again: bool | None = None
    invalid_reason: str | None = None
    screened_reason: str | None = None
    pruned_reason: str | None = None
    repeat_of: int | None = None
    accuracy_curve: Mapping[str, float] | None = None
    student_path: str | None = None
    train_seconds: float | None = None
    fidelity: str | None = None
    proxy_trial: int | None = None
    proxy_accuracy: float | None = None

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        """The record of a trial's user attributes (stored names: `_FIELDS`; the rest are figures)."""
        own = {name: attrs[name] for name in _FIELDS if name in attrs}
        return cls(figures={k: v for k, v in attrs.items() if k not in _FIELDS}, **own)

    @classmethod
    def from_trial(cls, trial: optuna.trial.FrozenTrial | optuna.Trial) -> TrialRecord:
        return cls.from_attrs(trial.user_attrs)

    def to_attrs(self) -> dict[str, Any]:
        """The user attributes this record stands for: the fields set, and the figures."""
        own = {name: value for name, value in asdict(self).items()
               if name != "figures" and value is not None}
        return json_safe({**self.figures, **own})

    def value(self, metric: Metric) -> Any:
        """The trial's figure of `metric` (through its fallback keys), or None."""
        return metric.value(self.figures)

    @property
    def ruled_out(self) -> bool:
        """Its architecture is impossible or breaks a budget (ended before training)."""
        return self.invalid_reason is not None or self.screened_reason is not None

    def cost(self) -> dict[str, Any] | None:
        """What its cost function measured before training (latency, params, size), if anything."""
        if self.figures.get(COST_KEYS[0]) is None:
            return None
        return {k: self.figures[k] for k in COST_KEYS if k in self.figures}

    def reused(self, repeat_of: int) -> TrialRecord:
        """What a repeat of this trial records: its results, none of what a trial records about
        itself (architecture, worker, proposer, twin, retries, interruption, resumption)."""
        return replace(self, architecture=None, architecture_key=None, worker=None, proposed_by=None,
                       twin_of=None, retry_of=None, retries=None, interrupted=None, resumed_from_trial=None,
                       resumed_at_step=None, repeat_of=repeat_of)


_FIELDS = frozenset(f.name for f in fields(TrialRecord)) - {"figures"}


def write(trial: optuna.Trial, record: TrialRecord) -> None:
    """Set the record's attributes on a running trial (each one set; others left as they are)."""
    for key, value in record.to_attrs().items():
        trial.set_user_attr(key, value)


def enqueue(study: optuna.Study, params: Mapping[str, Any], record: TrialRecord) -> None:
    """Queue a trial of `params` that starts with `record`'s attributes (Optuna's `ask` takes
    queued trials first)."""
    with warnings.catch_warnings():  # user_attrs of enqueue_trial are experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.enqueue_trial(dict(params), user_attrs=record.to_attrs())


@dataclass(frozen=True)
class StudyRecord:
    """The study's own attributes: its teacher row (measured once), where the teacher came from,
    the data, the binding (study/binding.py), the last search command, and for the supernet
    strategy its fidelity and proxy study."""

    teacher: Mapping[str, Any] | None = None
    teacher_model: str | None = None
    data: Mapping[str, Any] | None = None
    binding: Mapping[str, Any] | None = None
    search_command: str | None = None
    fidelity: str | None = None
    proxy_study: str | None = None

    @classmethod
    def of(cls, study: optuna.Study) -> StudyRecord:
        attrs = study.user_attrs
        return cls(**{f.name: attrs[f.name] for f in fields(cls) if attrs.get(f.name) is not None})

    def write(self, study: optuna.Study) -> None:
        """Set the fields this record holds on the study (others left as they are)."""
        for key, value in asdict(self).items():
            if value is not None:
                study.set_user_attr(key, json_safe(value))


__all__ = ["ACCURACY_CURVE", "ARCHITECTURE", "ARCHITECTURE_KEY", "BINDING", "DATA", "FAILURE_REASON", "FIDELITY",
           "INTERRUPTED", "INVALID_REASON", "PROPOSED_BY", "PROXY_ACCURACY", "PROXY_STUDY", "PROXY_TRIAL",
           "PRUNED_REASON", "REPEAT_OF", "RERUN_FAILS_AGAIN", "RESUMED_AT_STEP", "RESUMED_FROM_TRIAL", "RETRIES",
           "RETRY_OF", "SCREENED_REASON", "SEARCH_COMMAND", "STUDENT_PATH", "TEACHER", "TEACHER_MODEL",
           "TRAIN_SECONDS", "TWIN_OF", "WORKER", "StudyRecord", "TrialRecord", "enqueue", "json_safe", "write"]
