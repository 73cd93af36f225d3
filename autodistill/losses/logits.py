"""Where a model's logits and own task loss are in its output, for any model type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from autodistill.errors import MappingError


def extract_logits(output: Any, *, role: str = "model") -> torch.Tensor:
    """`output` itself if a tensor; `.logits`/`['logits']` of a dict-like output; else element 0."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        if output.get("logits") is not None:
            return output["logits"]
        for key in ("prediction_logits", "start_logits"):
            if output.get(key) is not None:
                return output[key]
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise MappingError(
        f"cannot find logits in the {role}'s output ({type(output).__name__}); return a tensor, "
        "a tuple whose first element is the logits, or an object with a 'logits' field"
    )


def extract_own_loss(output: Any) -> torch.Tensor | None:
    """The loss a model computed itself (Hugging Face models given `labels`), if any."""
    if isinstance(output, Mapping):
        loss = output.get("loss")
        return loss if isinstance(loss, torch.Tensor) else None
    return None
