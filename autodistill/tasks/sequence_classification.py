"""Sequence classification (the default task): one label per text, accuracy, logit KD per example."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from autodistill.config.tasks import windows_refusal
from autodistill.data.examples import LabelledTexts, check_teacher_classes
from autodistill.errors import ConfigError


class SequenceClassification:
    name = "sequence_classification"
    model_suffixes = ("ForSequenceClassification",)
    export_class = "AutoModelForSequenceClassification"
    pipeline_tag = "text-classification"
    labels = "classes"
    logit_kd_losses = None
    target_loss = "CE"
    caches_teacher_logits = True

    def datasets(self, splits: Any, tokenizer: Any, *, max_length: int, seed: int,
                 training_windows: bool = False) -> tuple[Any, Any, Any]:
        if training_windows:
            raise ConfigError(windows_refusal(self.name, self.labels) or "")
        from autodistill.data.tokenized import TokenizedDataset

        def tokenized(part: LabelledTexts | None) -> Any:
            return None if part is None else TokenizedDataset(part, tokenizer, max_length=max_length)

        return tokenized(splits.train), tokenized(splits.validation), tokenized(splits.test)

    def evaluate(self, model: Any, loader: Iterable[Any], *, device: Any) -> Mapping[str, float]:
        from autodistill.evaluation.accuracy import accuracy

        return {"accuracy": accuracy(model, loader, device=device)}

    def model_kwargs(self, label_names: tuple[str, ...], num_labels: int) -> dict[str, Any]:
        return {"num_labels": num_labels}

    def check_teacher(self, data: LabelledTexts, teacher_config: Any, *, location: str) -> None:
        check_teacher_classes(data, teacher_config.num_labels, teacher=f"teacher {location!r}")
