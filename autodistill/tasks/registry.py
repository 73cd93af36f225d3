"""The task kinds by name, and the task a model class implies.

    task: masked_lm          # in a search config; left out, it follows teacher.model_cls:
                             # *ForMaskedLM / *ForPreTraining -> masked_lm,
                             # *ForTokenClassification -> token_classification, else sequence_classification
                             # (regression shares *ForSequenceClassification: name it)

Users add a kind the way the built-ins are added: `TASK_KINDS.register("my_task", MyKind())`.
"""

from __future__ import annotations

from autodistill.errors import ConfigError
from autodistill.registry import Registry
from autodistill.tasks.kind import TaskKind, fits
from autodistill.tasks.masked_lm import MaskedLM
from autodistill.tasks.regression import Regression
from autodistill.tasks.sequence_classification import SequenceClassification
from autodistill.tasks.token_classification import TokenClassification

TASK_KINDS: Registry[TaskKind] = Registry("task")
DEFAULT_TASK = "sequence_classification"


def register_builtin_task_kinds() -> None:
    """Register the built-in kinds (idempotent)."""
    for kind in (SequenceClassification(), MaskedLM(), Regression(), TokenClassification()):
        if kind.name not in TASK_KINDS:
            TASK_KINDS.register(kind.name, kind)


def kind_of_class(model_cls: str) -> TaskKind | None:
    """The registered kind whose classes end like `model_cls`, if any."""
    kinds = (TASK_KINDS.get(name) for name in TASK_KINDS)
    return next((kind for kind in kinds if fits(kind, model_cls)), None)


def infer_task(model_cls: str) -> str:
    """The task a teacher class implies; a class of no known kind keeps the default."""
    kind = kind_of_class(model_cls)
    return kind.name if kind is not None else DEFAULT_TASK


def check_task_fits(task: str, model_cls: str, *, key: str) -> None:
    """A ConfigError when `model_cls` (the value of `key`) belongs to another task than `task`."""
    kind, other = TASK_KINDS.get(task), kind_of_class(model_cls)
    if other is not None and not fits(kind, model_cls):
        example = kind.model_suffixes[0]
        raise ConfigError(
            f"task {task!r} does not fit {key} {model_cls!r}, a {other.name} class; set {key}: "
            f"AutoModel{example} (or a *{example} class), or task: {other.name}")


register_builtin_task_kinds()
