"""The built-in student builder: the teacher's config with some keys replaced, fresh weights."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from torch import nn
from transformers import PretrainedConfig

from autodistill.errors import ConfigError, InvalidArchitecture, did_you_mean
from autodistill.models.classes import model_class


def student_config(base: PretrainedConfig, overrides: Mapping[str, Any]) -> PretrainedConfig:
    """A copy of `base` with `overrides` set; a key the config does not have is an error."""
    config = copy.deepcopy(base)
    known = set(config.to_dict())
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(
                f"{type(base).__name__} has no key {key!r}{did_you_mean(key, known)}; "
                "a student is the teacher's config with existing keys replaced"
            )
        setattr(config, key, value)
    return config


# the config keys check_architecture reads (autodistill.preflight enumerates their combinations)
ARCHITECTURE_KEYS = ("hidden_size", "num_attention_heads", "intra_bottleneck_size", "use_bottleneck")


def check_architecture(config: Any) -> None:
    """Reject, before building, combinations no model can have."""
    hidden = getattr(config, "hidden_size", None)
    heads = getattr(config, "num_attention_heads", None)
    if isinstance(hidden, int) and isinstance(heads, int) and heads > 0 and hidden % heads:
        raise InvalidArchitecture(
            f"hidden_size {hidden} is not divisible by num_attention_heads {heads}")
    bottleneck = getattr(config, "intra_bottleneck_size", None)
    if getattr(config, "use_bottleneck", False) and isinstance(bottleneck, int) and isinstance(heads, int) \
            and bottleneck % heads:
        raise InvalidArchitecture(
            f"intra_bottleneck_size {bottleneck} is not divisible by num_attention_heads {heads}")


def build_student(base: PretrainedConfig, overrides: Mapping[str, Any], *, model_cls: str,
                  attn_implementation: str | None = None) -> nn.Module:
    """A freshly initialised `model_cls` for the teacher's config with `overrides`."""
    config = student_config(base, overrides)
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    return model_class(model_cls).from_config(config, **kwargs)
