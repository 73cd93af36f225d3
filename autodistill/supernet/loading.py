"""The supernet of a search: the finished one from the store, else trained (or resumed) and saved."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from torch import Tensor
from transformers import PreTrainedModel

from autodistill.config.supernet import SupernetSection
from autodistill.distill.teacher_cache import TeacherCache
from autodistill.space import SearchSpace
from autodistill.supernet.elastic import ElasticModel, check_supernet_space, elastic_for
from autodistill.supernet.importance import reorder_by_importance
from autodistill.supernet.sandwich import corners, space_grid
from autodistill.supernet.store import SupernetStore
from autodistill.supernet.training import train_supernet

__all__ = ["load_or_train_supernet"]

log = logging.getLogger(__name__)


def load_or_train_supernet(teacher: PreTrainedModel, *, loader: Any, space: SearchSpace, section: SupernetSection,
                           root: Path, key: str, importance_batches: Iterable[Mapping[str, Tensor]],
                           teacher_cache: TeacherCache | None = None, quiet: bool = False,
                           on_step: Callable[[int], None] | None = None) -> ElasticModel:
    """The finished supernet under `root/key` if there is one (a second run, a resumed study and
    every worker reuse it); else resume from its checkpoint or start: copy the teacher, reorder
    it by importance, cut its widths to the space's largest point (all its layers kept), train it
    by the sandwich rule, save.
    The teacher itself is left unchanged. `on_step(step)` as in `train_supernet`."""
    check_supernet_space(teacher.config, space_grid(space))
    store = SupernetStore(root, key)
    if not store.finished():
        with store.training_lock():  # workers that start together: one trains, the others wait
            if not store.finished():
                return _train_and_save(teacher, loader=loader, space=space, section=section, store=store,
                                       importance_batches=importance_batches, teacher_cache=teacher_cache,
                                       quiet=quiet, on_step=on_step)
    log.info("reusing the supernet in %s", store.final)
    return elastic_for(store.load(teacher))


def _train_and_save(teacher: PreTrainedModel, *, loader: Any, space: SearchSpace, section: SupernetSection,
                    store: SupernetStore, importance_batches: Iterable[Mapping[str, Tensor]],
                    teacher_cache: TeacherCache | None, quiet: bool,
                    on_step: Callable[[int], None] | None) -> ElasticModel:
    grid = space_grid(space)
    supernet = copy.deepcopy(teacher)
    record: dict[str, Any] = {}
    if not store.has_checkpoint():  # a checkpoint's weights replace all of these
        importance = reorder_by_importance(supernet, importance_batches)
        record["importance"] = {"head_order": importance.head_order, "batches": importance.batches}
    full = elastic_for(supernet)
    largest, _ = corners(grid, supernet.config, full.layout)
    # widths cut to the space's largest point; every layer kept, so a sub-network of depth L takes
    # the teacher layers init_from_teacher and the flash templates pair it with
    depth = full.layout.depth
    widest = {**largest, depth: getattr(supernet.config, depth)}
    elastic = elastic_for(full.extract(widest).requires_grad_(True))
    del supernet, full
    report = train_supernet(elastic, teacher=teacher, loader=loader, space=space, section=section,
                            teacher_cache=teacher_cache, store=store, quiet=quiet, on_step=on_step)
    store.save(elastic.model, {**record, "steps": report.steps, "resumed_from": report.resumed_from,
                               "seconds": report.seconds,
                               "cpu_seconds": report.cpu_seconds, "last_losses": report.last_losses(),
                               "largest": largest, "settings": section.model_dump(mode="json")})
    return elastic
