"""Loading teachers with `from_pretrained` on a local folder or a hub name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedModel

from autodistill.errors import ConfigError
from autodistill.models.classes import model_class


def load_pretrained(model: str, *, model_cls: str, role: str, **kwargs: Any) -> PreTrainedModel:
    """`model_cls.from_pretrained(model, **kwargs)` with an error that says what to check."""
    cls = model_class(model_cls)
    try:
        return cls.from_pretrained(model, **{k: v for k, v in kwargs.items() if v is not None})
    except (OSError, ValueError) as exc:
        local = Path(model).exists()
        hint = ("the folder exists but is not a saved model (config.json and weights)" if local
                else "no such folder; as a hub name it could not be fetched (offline?)")
        raise ConfigError(f"{role} model {model!r} cannot be loaded: {hint}. ({exc})") from None
