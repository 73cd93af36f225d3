"""The sub-networks of one sandwich step: the space's largest, its smallest, and a few random ones.

Once-for-All's sandwich rule (Yu & Huang's slimmable networks, then Cai et al., 2020): training
the two ends of the space every step bounds every sub-network in between, and the random ones
cover the middle. Corners are taken per dimension (the widest hidden size with the most heads
that divide it, etc.); the random draws are seeded by (seed, step), so a resumed run draws
what the interrupted one would have.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from transformers import PretrainedConfig

from autodistill.errors import ConfigError
from autodistill.space import SearchSpace
from autodistill.supernet.elastic import Layout

__all__ = ["SubNetwork", "corners", "sandwich"]

Grid = Mapping[str, list[Any]]  # every value of every dimension (SearchSpace.grid())
SubNetwork = tuple[str, dict[str, Any]]  # ("largest" | "smallest" | "random", architecture)
_DRAWS = 100  # random draws tried before a step gives up on a valid random sub-network


def space_grid(space: SearchSpace) -> Grid:
    """Every value of every dimension; a continuous dimension is a ConfigError a supernet can name."""
    try:
        return space.grid()
    except ConfigError:
        continuous = [d.name for d in space.dimensions if d.count() is None]
        raise ConfigError(f"search.search_space.{continuous[0]}: a supernet slices whole units, but it is a "
                          "continuous range; give it a step or a list, or set search.strategy: per_trial") from None


def _valid(architecture: Mapping[str, Any], config: PretrainedConfig, layout: Layout) -> bool:
    hidden = architecture.get(layout.hidden, getattr(config, layout.hidden))
    heads = architecture.get(layout.heads, getattr(config, layout.heads))
    return hidden % heads == 0


def corners(grid: Grid, config: PretrainedConfig, layout: Layout) -> tuple[dict[str, Any], dict[str, Any]]:
    """(largest, smallest) architecture of the space (`SearchSpace.grid()`) whose hidden size its
    head count divides."""
    hidden = grid.get(layout.hidden, [getattr(config, layout.hidden)])
    heads = grid.get(layout.heads, [getattr(config, layout.heads)])
    pairs = [(d, h) for d in hidden for h in heads if d % h == 0]
    if not pairs:
        raise ConfigError(f"search.search_space: no {layout.heads} value divides a {layout.hidden} value, so "
                          "the supernet has no sub-network; add a head count that divides one")
    ends = []
    for pick in (max, min):
        architecture = {name: pick(values) for name, values in grid.items()}
        d, h = pick(pairs)
        for name, value in ((layout.hidden, d), (layout.heads, h)):
            if name in grid:
                architecture[name] = value
        ends.append(architecture)
    return ends[0], ends[1]


def sandwich(grid: Grid, config: PretrainedConfig, layout: Layout, *, seed: int, step: int,
             random_subnets: int, ends: tuple[dict[str, Any], dict[str, Any]]) -> list[SubNetwork]:
    """The step's sub-networks: largest, smallest, then `random_subnets` valid random draws
    (each dimension's value drawn uniformly from its grid)."""
    rng = random.Random(seed * 1_000_003 + step)
    subnets: list[SubNetwork] = [("largest", ends[0]), ("smallest", ends[1])]
    for _ in range(random_subnets):
        for _ in range(_DRAWS):
            drawn = {name: rng.choice(values) for name, values in grid.items()}
            if _valid(drawn, config, layout):
                subnets.append(("random", drawn))
                break
    return subnets
