"""One generic registry: names -> objects, with errors that list the choices.

    LOSSES = Registry("loss type")

    @LOSSES.register("MSE")
    def mse(...): ...

    LOSSES.register("MY_LOSS", my_callable)   # users extend it the same way
    LOSSES.get("mse")                        # names are case-insensitive
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

from autodistill.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._display: dict[str, str] = {}

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().lower()

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None):  # type: ignore[no-untyped-def]
        """Register `obj` under `name`; used bare as a decorator when `obj` is omitted."""

        def add(item: T) -> T:
            key = self._key(name)
            if key in self._items:
                raise ConfigError(
                    f"{self.kind} {name!r} is already registered; choose another name "
                    f"or call unregister({name!r}) first"
                )
            self._items[key] = item
            self._display[key] = name
            return item

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        key = self._key(name)
        self._items.pop(key, None)
        self._display.pop(key, None)

    def get(self, name: str) -> T:
        key = self._key(name)
        if key not in self._items:
            raise ConfigError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}; "
                f"allowed: {', '.join(self.names())}"
            )
        return self._items[key]

    def names(self) -> list[str]:
        return [self._display[k] for k in self._items]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
