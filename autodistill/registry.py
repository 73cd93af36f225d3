"""One generic registry: names -> objects, with errors that list the choices.

    LOSSES = Registry("loss type")

    @LOSSES.register("MSE")
    def mse(...): ...

    LOSSES.register("MY_LOSS", my_callable)   # users extend it the same way
    LOSSES.get("mse")                        # names are case-insensitive

A registry may know names before their objects (`builtins`: name -> "module:attr", as
transformers' `*_MAPPING_NAMES` do): the name is listed and checked at once, and its module
is imported on the first `get` (`check(name)` checks a name and imports nothing). So config
validates names (autodistill/registries.py) without importing torch, Optuna or the code behind them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar, overload

from autodistill.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, builtins: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._display: dict[str, str] = {}
        self._lazy: dict[str, str] = {}  # key -> "module:attr", imported on first get
        for name, target in (builtins or {}).items():
            self._add(name)
            self._lazy[self._key(name)] = target

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().lower()

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register `obj` under `name`; used bare as a decorator when `obj` is omitted."""

        def add(item: T) -> T:
            self._items[self._add(name)] = item
            return item

        return add if obj is None else add(obj)

    def _add(self, name: str) -> str:
        key = self._key(name)
        if key in self._display:
            raise ConfigError(
                f"{self.kind} {name!r} is already registered; choose another name "
                f"or call unregister({name!r}) first"
            )
        self._display[key] = name
        return key

    def unregister(self, name: str) -> None:
        key = self._key(name)
        self._items.pop(key, None)
        self._display.pop(key, None)
        self._lazy.pop(key, None)

    def check(self, name: str) -> str:
        """`name` if registered (nothing is imported); else a ConfigError listing the choices."""
        if self._key(name) not in self._display:
            raise ConfigError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}; "
                f"allowed: {', '.join(self.names())}"
            )
        return name

    def get(self, name: str) -> T:
        key = self._key(self.check(name))
        if key in self._lazy:
            module, _, attr = self._lazy[key].partition(":")
            self._items[key] = getattr(importlib.import_module(module), attr)
            del self._lazy[key]
        return self._items[key]

    def names(self) -> list[str]:
        return list(self._display.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._display

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
