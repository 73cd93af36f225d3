"""Regression: one number per text (a CSV / JSON Lines label column of numbers).

- model: a `*ForSequenceClassification` with one output (`num_labels: 1`,
  `problem_type: regression`: its own loss is MSE);
- metrics on the validation split: `pearson` (Pearson correlation, also the search objective
  `accuracy`, higher is better) and `mse`;
- logit KD: MSE between the student's and the teacher's output (a softmax over one output is
  constant, so KL and CE are refused for it): `regular_distillation.loss_types: [MSE, MSE]`;
- export: `AutoModelForSequenceClassification`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from autodistill.config.tasks import windows_refusal
from autodistill.data.examples import LabelledTexts
from autodistill.errors import ConfigError
from autodistill.tasks.sequence_classification import SequenceClassification


class Regression:
    name = "regression"
    model_suffixes = ("ForSequenceClassification",)
    export_class = "AutoModelForSequenceClassification"
    pipeline_tag = "text-classification"
    labels = "targets"
    logit_kd_losses = ("MSE",)
    target_loss = "MSE"
    caches_teacher_logits = True

    def datasets(self, splits: Any, tokenizer: Any, *, max_length: int, seed: int,
                 training_windows: bool = False) -> tuple[Any, Any, Any]:
        if training_windows:
            raise ConfigError(windows_refusal(self.name, self.labels) or "")
        return SequenceClassification().datasets(splits, tokenizer, max_length=max_length, seed=seed)

    def evaluate(self, model: Any, loader: Iterable[Any], *, device: Any) -> Mapping[str, float]:
        from autodistill.evaluation.regression import regression_figures

        figures = regression_figures(model, loader, device=device)
        return {"accuracy": figures["pearson"], **figures}

    def model_kwargs(self, label_names: tuple[str, ...], num_labels: int) -> dict[str, Any]:
        return {"num_labels": 1, "problem_type": "regression"}

    def check_teacher(self, data: LabelledTexts, teacher_config: Any, *, location: str) -> None:
        if teacher_config.num_labels != 1:
            raise ConfigError(
                f"teacher.fine_tune: task regression needs a teacher with one output, but {location!r} "
                f"was saved with {teacher_config.num_labels} (num_labels in its config.json); fine-tune "
                "it on this data (teacher.fine_tune: {epochs: 1}) or give a regression teacher")
