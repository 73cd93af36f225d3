"""Built-in task kinds (sequence classification, masked LM): each owns its data collation,
metrics, logit-KD shape and export class. The engine's side of `task:` in a search config."""

from autodistill.tasks.kind import TaskKind, fits
from autodistill.tasks.registry import (
    DEFAULT_TASK,
    TASK_KINDS,
    check_task_fits,
    infer_task,
    kind_of_class,
    register_builtin_task_kinds,
)

__all__ = ["DEFAULT_TASK", "TASK_KINDS", "TaskKind", "check_task_fits", "fits", "infer_task",
           "kind_of_class", "register_builtin_task_kinds"]
