"""The built-in student builder: the teacher's config with some keys replaced, fresh weights."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from transformers import PretrainedConfig, PreTrainedModel

from autodistill.errors import ConfigError, InvalidArchitecture, did_you_mean
from autodistill.models.classes import model_class


def student_config(base: PretrainedConfig, overrides: Mapping[str, Any]) -> PretrainedConfig:
    """A copy of `base` with `overrides` set; a key the config does not have is an error, and so is
    a value `check_value` refuses (InvalidArchitecture)."""
    config = copy.deepcopy(base)
    known = set(config.to_dict())
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(
                f"{type(base).__name__} has no key {key!r}{did_you_mean(key, known)}; "
                "a student is the teacher's config with existing keys replaced"
            )
        check_value(base, key, value)
        setattr(config, key, value)
    _derive_sizes(config)
    return config


def _derive_sizes(config: PretrainedConfig) -> None:
    """Recompute the sizes a config derives from others when it is made (setattr does not):
    MobileBERT's attention width `true_hidden_size` is `intra_bottleneck_size` with
    `use_bottleneck`, else `hidden_size`."""
    if hasattr(config, "true_hidden_size") and hasattr(config, "intra_bottleneck_size"):
        config.true_hidden_size = config.intra_bottleneck_size if config.use_bottleneck else config.hidden_size


def _is_count(key: str) -> bool:
    """Sizes and counts (hidden_size, num_attention_heads, num_hidden_layers, ...): at least 1."""
    return key.startswith("num_") or key.endswith(("_size", "_layers", "_heads", "_embeddings"))


def _is_probability(key: str) -> bool:
    return key.endswith("_prob") or "dropout" in key


def check_value(base: PretrainedConfig, key: str, value: Any) -> None:
    """The builder's rules for one value of one config key, before anything is built: the type the
    base config holds there (an int key takes 16, not 16.0; a bool key true or false), sizes and
    counts at least 1, dropout probabilities in [0, 1], epsilons above 0."""
    held = getattr(base, key, None)
    where = f"{key} ({type(base).__name__} holds {held!r})"
    if isinstance(held, bool) and not isinstance(value, bool):
        raise InvalidArchitecture(f"{where} takes true or false, got {value!r}")
    if isinstance(held, int) and not isinstance(held, bool) and (
            not isinstance(value, int) or isinstance(value, bool)):
        fix = f"; write {int(value)}" if isinstance(value, float) and value.is_integer() else ""
        raise InvalidArchitecture(f"{where} takes an integer, got {value!r}{fix}")
    if isinstance(held, float) and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise InvalidArchitecture(f"{where} takes a number, got {value!r}")
    if isinstance(held, str) and not isinstance(value, str):
        raise InvalidArchitecture(f"{where} takes a string, got {value!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if isinstance(value, int) and _is_count(key) and value < 1:
        raise InvalidArchitecture(f"{key} is a size or count and must be >= 1, got {value}")
    if _is_probability(key) and not 0 <= value <= 1:
        raise InvalidArchitecture(f"{key} is a probability and must be in [0, 1], got {value}")
    if key.endswith("_eps") and not value > 0:
        raise InvalidArchitecture(f"{key} must be > 0, got {value}")


# the config keys check_architecture reads (autodistill.preflight enumerates their combinations)
ARCHITECTURE_KEYS = ("hidden_size", "num_attention_heads", "intra_bottleneck_size", "use_bottleneck")


def check_architecture(config: Any) -> None:
    """Reject, before building, combinations no model can have: the width the attention heads
    split must be a multiple of num_attention_heads (hidden_size, or MobileBERT's
    intra_bottleneck_size with use_bottleneck: its heads split the bottleneck, so any
    hidden_size fits them, e.g. seed 003's 246)."""
    heads = getattr(config, "num_attention_heads", None)
    bottleneck = getattr(config, "use_bottleneck", False) is True and hasattr(config, "intra_bottleneck_size")
    key = "intra_bottleneck_size" if bottleneck else "hidden_size"
    width = getattr(config, key, None)
    if isinstance(width, int) and isinstance(heads, int) and heads > 0 and width % heads:
        raise InvalidArchitecture(f"{key} {width} is not divisible by num_attention_heads {heads}")


def with_vocabulary(base: PretrainedConfig, tokenizer: Any) -> PretrainedConfig:
    """A copy of `base` sized for `tokenizer` (a student tokenizer other than the teacher's,
    `student.tokenizer`): its length as `vocab_size` (added tokens included), its padding id as
    `pad_token_id` (the embedding's padding row)."""
    config = copy.deepcopy(base)
    config.vocab_size = len(tokenizer)
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id
    return config


def build_student(base: PretrainedConfig, overrides: Mapping[str, Any], *, model_cls: str,
                  attn_implementation: str | None = None) -> PreTrainedModel:
    """A freshly initialised `model_cls` for the teacher's config with `overrides`."""
    config = student_config(base, overrides)
    check_architecture(config)
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    return model_class(model_cls).from_config(config, **kwargs)
