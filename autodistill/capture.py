"""Capture any submodule's output by dotted module path and output index, with forward hooks.

    with FeatureCapture(model, ["bert.encoder.layer.3.attention.self"]) as capture:
        model(**inputs)
        probs = capture.get("bert.encoder.layer.3.attention.self", (1,))

Outputs are kept by reference (no copies); hooks are removed on exit. With
`stop_when_complete=True` the forward pass is cut short as soon as every path has
fired, so a flash-distillation step on block 0 does not run the layers above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from autodistill.errors import CaptureError, nearest


class _ForwardComplete(Exception):
    """Raised from a hook to end a forward pass whose features are all captured."""


def resolve_module(model: nn.Module, path: str, *, role: str = "model") -> nn.Module:
    """The submodule at dotted `path` ('' is the model itself); errors list the nearest names."""
    if path == "":
        return model
    try:
        return model.get_submodule(path)
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name]
        close = nearest(path, names, n=5)
        hint = f"; closest existing names: {', '.join(close)}" if close else ""
        raise CaptureError(
            f"{role} has no module '{path}'{hint}. "
            f"List the names with `autodistill layers MODEL` or model.named_modules()"
        ) from None


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of length {len(value)}"
    if isinstance(value, Mapping):
        return f"{type(value).__name__} with keys {list(value.keys())}"
    return type(value).__name__


def select_output(output: Any, index: tuple[int | str, ...], *, where: str) -> torch.Tensor:
    """Pick `output[i0][i1]...`; tuples/lists by position, dict-like outputs by position or key."""
    value = output
    for depth, i in enumerate(index):
        at = f"{where} output index {'.'.join(str(x) for x in index[: depth + 1])}"
        if isinstance(value, Mapping) and isinstance(i, str):
            if i not in value:
                raise CaptureError(f"{at}: no key {i!r}; the output is {_describe(value)}")
            value = value[i]
            continue
        if isinstance(value, Mapping):
            value = tuple(v for v in value.values() if v is not None)
        if isinstance(value, (tuple, list)) and isinstance(i, int):
            if not -len(value) <= i < len(value):
                raise CaptureError(
                    f"{at} is out of range: the output is a {type(value).__name__} of "
                    f"length {len(value)} (valid indices 0..{len(value) - 1})"
                )
            value = value[i]
            continue
        raise CaptureError(f"{at}: cannot index {_describe(value)} with {i!r}")
    if value is None:
        raise CaptureError(
            f"{where} output index {'.'.join(map(str, index))} is None. For attention maps load "
            "the model with attn_implementation='eager' (sdpa and flash attention return none)"
        )
    if not isinstance(value, torch.Tensor):
        if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
            raise CaptureError(
                f"{where} output is {_describe(value)}, not a tensor; add an output index "
                f"such as '0' to pick one element"
            )
        raise CaptureError(f"{where} output is {_describe(value)}, not a tensor")
    return value


class FeatureCapture:
    """Forward hooks on a set of module paths of one model; a context manager."""

    def __init__(self, model: nn.Module, paths: Iterable[str], *, role: str = "model",
                 stop_when_complete: bool = False) -> None:
        self.model = model
        self.role = role
        self.paths = tuple(dict.fromkeys(paths))
        self.modules = {p: resolve_module(model, p, role=role) for p in self.paths}
        self.stop_when_complete = stop_when_complete and bool(self.paths)
        self.outputs: dict[str, Any] = {}
        self.output: Any = None  # the model's return value of the last run (None if cut short)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, path: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self.outputs[path] = output
            if self.stop_when_complete and len(self.outputs) == len(self.paths):
                raise _ForwardComplete

        return hook

    def __enter__(self) -> FeatureCapture:
        for path, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._hook(path)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def run(self, forward: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call `forward`, recording features; returns its output, or None if cut short."""
        self.outputs = {}
        try:
            self.output = forward(*args, **kwargs)
        except _ForwardComplete:
            self.output = None
        return self.output

    def get(self, path: str, index: tuple[int | str, ...] = ()) -> torch.Tensor:
        if path not in self.outputs:
            raise CaptureError(
                f"{self.role} module '{path}' did not run in the forward pass; "
                "check that the inputs reach it"
            )
        return select_output(self.outputs[path], index, where=f"{self.role} module '{path}'")
