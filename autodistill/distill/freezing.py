"""Which student parameters a stage trains: exact module prefixes, never substrings.

`layer.1` selects `layer.1.*`, not `layer.10.*`..`layer.19.*` (a bug of the system
this project descends from).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import nn

from autodistill.errors import CaptureError, nearest


def under_prefix(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def select_parameters(model: nn.Module, prefixes: Sequence[str] | None
                      ) -> list[tuple[str, nn.Parameter]]:
    """The named parameters under any of `prefixes` (None: all); unknown prefixes are errors."""
    named = list(model.named_parameters())
    if prefixes is None:
        return named
    chosen = []
    for prefix in prefixes:
        hits = [(n, p) for n, p in named if under_prefix(n, prefix)]
        if not hits:
            modules = [n for n, _ in model.named_modules() if n]
            close = nearest(prefix, modules, n=5)
            raise CaptureError(
                f"block '{prefix}' names no trainable parameters of the student"
                + (f"; closest module names: {', '.join(close)}" if close else "")
            )
        chosen += hits
    return list(dict((n, p) for n, p in chosen).items())


@contextmanager
def train_only(model: nn.Module, prefixes: Sequence[str] | None
               ) -> Iterator[list[tuple[str, nn.Parameter]]]:
    """Freeze every parameter but those under `prefixes`; restore the flags afterwards."""
    chosen = select_parameters(model, prefixes)
    keep = {id(p) for _, p in chosen}
    before = {id(p): p.requires_grad for p in model.parameters()}
    try:
        for p in model.parameters():
            p.requires_grad_(id(p) in keep and before[id(p)])
        yield [(n, p) for n, p in chosen if p.requires_grad]
    finally:
        for p in model.parameters():
            p.requires_grad_(before[id(p)])
