"""The project's exceptions: one root, one child per kind of failure.

Every message states the rule, the value that broke it and how to fix it, so the
CLI can print it as one line (exit code 2) without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AutodistillError(Exception):
    """Root of every error autodistill raises on purpose."""


class ConfigError(AutodistillError):
    """A configuration value is missing, malformed or not allowed."""


class CaptureError(AutodistillError):
    """A module path or output index does not exist in a model."""


class MappingError(AutodistillError):
    """A layer mapping cannot be computed (shapes no matcher bridges, missing labels, ...)."""


class NonFiniteLossError(AutodistillError):
    """A loss became NaN or infinite during training."""

    def __init__(self, stage: str, step: int, value: float, terms: dict[str, float] | None = None):
        self.stage, self.step, self.value = stage, step, value
        self.terms = dict(terms or {})
        detail = ", ".join(f"{k}={v:.4g}" for k, v in self.terms.items())
        super().__init__(
            f"loss became {value} in stage '{stage}' at step {step}"
            + (f" (terms: {detail})" if detail else "")
            + "; lower the learning rate, enable max_grad_norm, or check the inputs"
        )


def nearest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The `n` choices closest to `name`, for 'did you mean' hints."""
    choices = list(choices)
    found = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if not found:
        # fall back to shared-prefix matches, useful for long dotted module paths
        head = name.rsplit(".", 1)[0]
        found = [c for c in choices if c.startswith(head)][:n]
    return found


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x' or 'y'?)' or '' when nothing is close."""
    close = nearest(name, choices)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


class InvalidArchitecture(AutodistillError):
    """A sampled architecture no model can have (e.g. hidden size not divisible by heads)."""


class StorageError(AutodistillError):
    """The study storage cannot be reached or holds an incompatible study."""


class ExportError(AutodistillError):
    """A student cannot be exported as asked (e.g. its ONNX graph computes other outputs)."""


class DiskSpaceError(AutodistillError):
    """A file does not fit on its disk (checked before writing, or the disk filled up)."""
