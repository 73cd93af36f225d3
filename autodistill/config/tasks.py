"""The task a search config names or implies, checked against its model classes.

    task: masked_lm          # in a search config; left out, it follows teacher.model_cls:
                             # *ForMaskedLM / *ForPreTraining -> masked_lm,
                             # *ForTokenClassification -> token_classification, else sequence_classification
                             # (regression shares *ForSequenceClassification: name it)

The kinds are TASK_KINDS (autodistill/registries.py; the built-ins in autodistill/tasks/): a
kind's module is imported when it is first asked for, and none of them imports torch on import.
"""

from __future__ import annotations

from typing import Any

from autodistill.errors import ConfigError
from autodistill.registries import TASK_KINDS

DEFAULT_TASK = "sequence_classification"


def fits(kind: Any, model_cls: str) -> bool:
    """Whether a transformers class name (e.g. BertForMaskedLM, AutoModelForPreTraining) is of `kind`
    (a TaskKind)."""
    return model_cls.endswith(kind.model_suffixes)


def kind_of_class(model_cls: str) -> Any:
    """The registered kind (a TaskKind) whose classes end like `model_cls`, if any."""
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


def windows_refusal(task: str, labels: str, *, key: str = "data.training_windows") -> str | None:
    """Why a task kind (its `labels`) cannot read its training texts in windows (None: it can);
    `key` names the setting (relative to where the message is placed)."""
    if labels == "none":
        return None
    return (f"{key}: task {task} reads a label per text or per word, and a window cut "
            "from the middle of a text may not show its label (nor hold its words' tags); it is for "
            f"task masked_lm, whose labels are the text itself; remove {key}")
