"""Model classes by name (`AutoModelForSequenceClassification`, ...), resolved once at the edge."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

import transformers

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

from autodistill.errors import ConfigError, did_you_mean

_COMMON = ("AutoModel", "AutoModelForSequenceClassification", "AutoModelForMaskedLM",
           "AutoModelForPreTraining", "AutoModelForTokenClassification",
           "AutoModelForQuestionAnswering")


class ModelClass(Protocol):
    """What `model_class` returns: an Auto class or a model class, which builds models."""

    def from_pretrained(self, location: str | os.PathLike[str], *args: Any, **kwargs: Any) -> PreTrainedModel: ...

    def from_config(self, config: PretrainedConfig, **kwargs: Any) -> PreTrainedModel: ...


def model_class(name: str) -> ModelClass:
    """The transformers class called `name`; an unknown name lists the common choices."""
    cls = getattr(transformers, name, None)
    if cls is None or not (hasattr(cls, "from_pretrained") and hasattr(cls, "from_config")):
        raise ConfigError(
            f"model_cls {name!r} is not a transformers model class{did_you_mean(name, _COMMON)}; "
            f"common choices: {', '.join(_COMMON)}"
        )
    return cls
