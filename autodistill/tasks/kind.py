"""What a built-in task kind owns: its data collation, metrics, logit-KD shape and export class.

    kind = TASK_KINDS.get("masked_lm")           # autodistill.registries
    train, validation, test = kind.datasets(splits, tokenizer, max_length=64, seed=0)
    figures = kind.evaluate(model, loader, device="cpu")   # {"accuracy": ..., ...}

`DistillationTask` (study/task.py) holds one and asks it; nothing else branches on the task.
The logit-KD shape follows the labels a kind's datasets carry: per-example labels (sequence
classification, regression) give one distribution per example; per-token labels (masked LM,
token classification: -100 where a token is not scored) make logit KD per kept token
(losses/masking.py: `logit_positions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset

    from autodistill.data.examples import LabelledTexts
    from autodistill.data.sources import Splits


class TaskKind(Protocol):
    name: str
    model_suffixes: tuple[str, ...]  # transformers class names ending so belong to this kind
    export_class: str                # the Auto class that reloads an exported student
    pipeline_tag: str | None         # the Hugging Face pipeline of the model card
    labels: str                      # what the label column holds: "classes", "targets" (numbers),
                                     # "tags" (one per word) or "none" (not read)
    logit_kd_losses: tuple[str, ...] | None  # the logit-KD loss types that fit its logits (None: any)
    target_loss: str                 # the student-target loss of a teacher fine-tune (TARGET_LOSSES)
    caches_teacher_logits: bool      # teacher logits small enough for the teacher cache

    def datasets(self, splits: Splits, tokenizer: Any, *, max_length: int, seed: int,
                 training_windows: bool = False) -> tuple[Dataset, Dataset, Dataset | None]:
        """The train, validation and test sets; with `training_windows` (a kind that reads no
        labels; `windows_refusal` for the others) the training texts are read whole, in windows
        of `max_length` tokens, the validation and test texts as before (their first window)."""

    def evaluate(self, model: nn.Module, loader: Iterable[Any], *,
                 device: torch.device | str) -> Mapping[str, float]: ...

    def model_kwargs(self, label_names: tuple[str, ...], num_labels: int) -> dict[str, Any]:
        """Keyword arguments of the teacher's `from_pretrained` (its head's size and names)."""

    def check_teacher(self, data: LabelledTexts, teacher_config: Any, *, location: str) -> None:
        """Before the teacher loads: a teacher used as saved (no teacher.fine_tune) fits the
        task and the data (its config.json, `teacher_config`); a ConfigError if not."""
