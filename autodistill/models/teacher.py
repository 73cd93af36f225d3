"""Loading teachers with `from_pretrained` on a local folder or a hub name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedModel

from autodistill.errors import ConfigError
from autodistill.models.classes import model_class


def load_pretrained(model: str, *, model_cls: str, role: str, **kwargs: Any) -> PreTrainedModel:
    """`model_cls.from_pretrained(model, **kwargs)` with an error that says what to check."""
    return load_reporting_fresh(model, model_cls=model_cls, role=role, **kwargs)[0]


def load_reporting_fresh(model: str, *, model_cls: str, role: str, **kwargs: Any
                         ) -> tuple[PreTrainedModel, tuple[str, ...]]:
    """`load_pretrained`, and the names of the parameters its checkpoint lacked (initialised fresh:
    a head the model was saved without)."""
    cls = model_class(model_cls)
    try:
        result: Any = cls.from_pretrained(model, output_loading_info=True,
                                          **{k: v for k, v in kwargs.items() if v is not None})
    except (OSError, ValueError) as exc:
        local = Path(model).exists()
        hint = ("the folder exists but is not a saved model (config.json and weights)" if local
                else "no such folder; as a hub name it could not be fetched (offline?)")
        raise ConfigError(f"{role} model {model!r} cannot be loaded: {hint}. ({exc})") from None
    loaded, info = result
    return loaded, tuple(sorted(info.get("missing_keys", ())))
