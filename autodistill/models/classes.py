"""Model classes by name (`AutoModelForSequenceClassification`, ...), resolved once at the edge."""

from __future__ import annotations

import transformers

from autodistill.errors import ConfigError, did_you_mean

_COMMON = ("AutoModel", "AutoModelForSequenceClassification", "AutoModelForMaskedLM",
           "AutoModelForPreTraining", "AutoModelForTokenClassification",
           "AutoModelForQuestionAnswering")


def model_class(name: str) -> type:
    """The transformers class called `name`; an unknown name lists the common choices."""
    cls = getattr(transformers, name, None)
    if cls is None or not (hasattr(cls, "from_pretrained") and hasattr(cls, "from_config")):
        raise ConfigError(
            f"model_cls {name!r} is not a transformers model class{did_you_mean(name, _COMMON)}; "
            f"common choices: {', '.join(_COMMON)}"
        )
    return cls
