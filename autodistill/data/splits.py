"""Stratified splits: each class divided in the same proportions, repeatably.

`split_indices` gives the example indices of each part, which a study can record
next to the data's fingerprint; `stratified_split` applies them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from autodistill.data.examples import LabelledTexts
from autodistill.errors import ConfigError

DEFAULT_FRACTIONS: tuple[float, ...] = (0.7, 0.1, 0.2)


def split_indices(
    labels: Sequence[int], *, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> tuple[tuple[int, ...], ...]:
    """The indices of each part, sorted, one part per fraction.

    Each class's indices are shuffled by `numpy.random.Generator(seed)` (classes in
    ascending id order) and cut into parts of sizes `fractions * class size`,
    rounded by largest remainder so that they add up to the class size. The same
    labels, fractions and seed always give the same parts.
    """
    fractions = _checked_fractions(fractions)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"the split seed must be an integer >= 0, but got {seed!r}")
    ids = np.asarray(labels, dtype=np.int64)
    rng = np.random.Generator(np.random.PCG64(seed))
    parts: list[list[int]] = [[] for _ in fractions]
    for label in np.unique(ids):
        members = rng.permutation(np.flatnonzero(ids == label))
        start = 0
        for part, size in zip(parts, _part_sizes(len(members), fractions)):
            part.extend(members[start : start + size].tolist())
            start += size
    empty = [i for i, part in enumerate(parts) if not part]
    if empty:
        raise ConfigError(
            f"split part {empty[0]} (fraction {fractions[empty[0]]}) would be empty with "
            f"{len(labels)} examples; use more data or larger fractions"
        )
    return tuple(tuple(sorted(part)) for part in parts)


def stratified_split(
    data: LabelledTexts, *, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> tuple[LabelledTexts, ...]:
    """`data` cut into one part per fraction (by default train, validation, test)."""
    return tuple(
        data.subset(part) for part in split_indices(data.labels, fractions=fractions, seed=seed)
    )


def _checked_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """`fractions` as a tuple, after checking they are positive and sum to 1."""
    fractions = tuple(fractions)
    if not fractions:
        raise ConfigError("split fractions must list at least one part, but got none")
    if not all(isinstance(f, (int, float)) and math.isfinite(f) and f > 0 for f in fractions):
        raise ConfigError(
            f"split fractions must all be positive numbers, but got {list(fractions)}; "
            "for example [0.7, 0.1, 0.2]"
        )
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ConfigError(
            f"split fractions must sum to 1, but got {list(fractions)} (sum {sum(fractions):.6g}); "
            "for example [0.7, 0.1, 0.2]"
        )
    return fractions


def _part_sizes(count: int, fractions: tuple[float, ...]) -> list[int]:
    """`count` divided in proportion to `fractions`, rounded by largest remainder.

    Ties go to the earlier part, so the result depends on nothing but its inputs.
    """
    total = sum(fractions)
    exact = [count * f / total for f in fractions]
    sizes = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in by_remainder[: count - sum(sizes)]:
        sizes[i] += 1
    return sizes
