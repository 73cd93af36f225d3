"""Built-in task kinds (sequence classification, masked LM): each owns its data collation,
metrics, logit-KD shape and export class. The engine's side of `task:` in a search config."""

from autodistill.config.tasks import DEFAULT_TASK, check_task_fits, fits, infer_task, kind_of_class
from autodistill.registries import TASK_KINDS
from autodistill.tasks.kind import TaskKind

__all__ = ["DEFAULT_TASK", "TASK_KINDS", "TaskKind", "check_task_fits", "fits", "infer_task",
           "kind_of_class"]
