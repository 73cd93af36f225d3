"""`module:function` names in YAML -> Python callables, resolved once at the edge."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from autodistill.errors import ConfigError


def import_callable(spec: str, *, key: str) -> Callable[..., Any]:
    """The callable named by `spec` ('package.module:function'); errors name the config key."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{key}: {spec!r} is not 'module:function' (e.g. my_project.search:train)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{key}: cannot import module {module_name!r} ({exc}); is it on PYTHONPATH?") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{key}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{key}: {spec!r} is not callable")
    return target
