"""Paths built from user strings stay inside their root.

    check_name("tiny", key="--study-name")            # a folder name, or a ConfigError
    inside(out, "trials", study_name, "00003")        # out/trials/tiny/00003, each part checked

A name (a study name, a model name) becomes one folder: it may hold no path separator, may not
be `.` or `..`, starts and ends with no blank, and holds at most `MAX_NAME_LENGTH` characters,
so `inside(root, ...)` can only ever name a path under `root`. `folder_name` is the same rule
as a pydantic validator (the config loader adds the file, line and key).
"""

from __future__ import annotations

from pathlib import Path

from autodistill.errors import ConfigError

MAX_NAME_LENGTH = 128  # well under the 255 bytes of a file name, with room for temporary suffixes


def _problem(name: str) -> str | None:
    """What stops `name` from being one folder name, or None."""
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} names a folder by its place, not its own name"
    for separator in ("/", "\\"):
        if separator in name:
            return f"it contains the path separator {separator!r}"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    if name != name.strip():
        return "it starts or ends with a blank"
    if len(name) > MAX_NAME_LENGTH or len(name.encode("utf-8")) > 2 * MAX_NAME_LENGTH:
        return f"it is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    return None


RULE = (f"a name is one folder name: 1 to {MAX_NAME_LENGTH} characters, no '/' or '\\', "
        "not '.' or '..'")


def folder_name(name: str) -> str:
    """A pydantic validator: `name` unchanged, or a ValueError stating the rule."""
    problem = _problem(name)
    if problem is not None:
        raise ValueError(f"cannot name a folder: {problem}; {RULE}; e.g. 'tiny-bert'")
    return name


def check_name(name: str, *, key: str, fix: str = "") -> str:
    """`name` unchanged, or a ConfigError naming `key`, the value, the rule and the fix."""
    problem = _problem(name)
    if problem is not None:
        raise ConfigError(f"{key}: {name!r} cannot name a folder: {problem}; {RULE}"
                          f"; {fix or 'e.g. tiny-bert'}")
    return name


def inside(root: str | Path, *names: str, key: str = "path") -> Path:
    """`root / name / ...`, where each name is one folder or file name (`check_name`): the result
    is always under `root`."""
    for name in names:
        check_name(name, key=key)
    return Path(root).joinpath(*names)


def same_or_inside(path: str | Path, folder: str | Path) -> bool:
    """`path` is `folder` or lies under it (symbolic links followed)."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())
