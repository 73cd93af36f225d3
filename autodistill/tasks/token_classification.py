"""Token classification (named entities): one tag per word, from JSON Lines.

- data: `{"tokens": [...words], "tags": [...tag names]}` per line (`data.text_column`,
  `data.label_column`; data/token_files.py); each word's tag sits on its first sub-word token,
  the rest are -100 (data/tagged_tokens.py);
- metrics on the validation split: entity-level F1 (the search objective `accuracy`), with
  precision, recall and token accuracy recorded;
- logit KD per tagged token (positions with label -100 and padding excluded), as masked LM;
- export: `AutoModelForTokenClassification`, with the tag names as `id2label`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from autodistill.config.tasks import windows_refusal
from autodistill.data.examples import LabelledTexts, check_teacher_classes
from autodistill.errors import ConfigError


class TokenClassification:
    name = "token_classification"
    model_suffixes = ("ForTokenClassification",)
    export_class = "AutoModelForTokenClassification"
    pipeline_tag = "token-classification"
    labels = "tags"
    logit_kd_losses = None
    target_loss = "CE"
    caches_teacher_logits = True

    def datasets(self, splits: Any, tokenizer: Any, *, max_length: int, seed: int,
                 training_windows: bool = False) -> tuple[Any, Any, Any]:
        if training_windows:
            raise ConfigError(windows_refusal(self.name, self.labels) or "")
        from autodistill.data.tagged_tokens import TaggedTokens

        def tagged(part: LabelledTexts | None) -> Any:
            return None if part is None else TaggedTokens(part, tokenizer, max_length=max_length)

        return tagged(splits.train), tagged(splits.validation), tagged(splits.test)

    def evaluate(self, model: Any, loader: Iterable[Any], *, device: Any) -> Mapping[str, float]:
        from autodistill.evaluation.token_classification import token_figures

        figures = token_figures(model, loader, device=device)
        return {"accuracy": figures["f1"], **figures}

    def model_kwargs(self, label_names: tuple[str, ...], num_labels: int) -> dict[str, Any]:
        return {"num_labels": num_labels, "id2label": dict(enumerate(label_names)),
                "label2id": {name: i for i, name in enumerate(label_names)}}

    def check_teacher(self, data: LabelledTexts, teacher_config: Any, *, location: str) -> None:
        check_teacher_classes(data, teacher_config.num_labels, teacher=f"teacher {location!r}")
