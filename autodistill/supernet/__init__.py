"""Weight-sharing search's engine (issue 13; DESIGN.md section 6): importance ordering, the
elastic supernet, exact extraction, sandwich training with a masked update, the supernet store.

    elastic = load_or_train_supernet(teacher, loader=..., space=..., section=..., root=..., key=...,
                                     importance_batches=...)
    student = elastic.extract({"hidden_size": 128, "num_hidden_layers": 2, ...})

API additions to the brief's (nothing renamed): `ElasticModel.layout` (a `Layout`: a model
type's dimension keys and module paths; `layout_for(model)`), BERT and DistilBERT registered
in ELASTIC (`FrontSlices` subclasses); `SupernetStore.training_lock()` (workers wait for the one
training); `train_supernet(..., on_step=None)` and
`load_or_train_supernet(..., on_step=None)` call `on_step(step)` after each step (tests stop a
run there); `ElasticModel.parameter_slices` returns {supernet parameter name: front slices};
`SupernetStore.load(template)` takes any model of the supernet's class; the checkpoint is the
file `<root>/<key>/checkpoint.pt`, the finished supernet the folder `<root>/<key>/final/`.
For the key's `settings`, pass `SupernetSection.key_settings()` (not `model_dump()`): it leaves
out `proxy_trials`, `final_trials` and `checkpoint_every_steps`, which do not change the weights,
so raising the proxy budget reuses the trained supernet.
"""

from autodistill.supernet.elastic import (
    ELASTIC,
    ElasticBert,
    ElasticDistilBert,
    ElasticModel,
    FrontSlices,
    Layout,
    check_supernet_space,
    elastic_for,
    layout_for,
)
from autodistill.supernet.importance import ImportanceReport, reorder_by_importance
from autodistill.supernet.loading import load_or_train_supernet
from autodistill.supernet.masked_adamw import MaskedAdamW
from autodistill.supernet.store import SupernetStore, supernet_key
from autodistill.supernet.training import SupernetReport, train_supernet

__all__ = ["ELASTIC", "ElasticBert", "ElasticDistilBert", "ElasticModel", "FrontSlices", "ImportanceReport",
           "Layout", "MaskedAdamW", "SupernetReport", "SupernetStore", "check_supernet_space", "elastic_for",
           "layout_for", "load_or_train_supernet", "reorder_by_importance", "supernet_key", "train_supernet"]
