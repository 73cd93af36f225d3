"""Fine-tune a teacher on the training split once; later runs reuse the saved result.

The saved teacher lives in `<cache_root>/<key>/`, where the key hashes the base model
(its config and weight files), the training and validation data, the label names, the
sequence length and the fine-tuning settings: a change to any of them fine-tunes anew,
nothing else does. The folder is written under a temporary name and renamed when
complete, so a killed fine-tune is never mistaken for a finished one; workers that start
together each fine-tune into their own temporary folder, and the first to finish wins. A
temporary folder whose process is gone (killed while saving) is removed by the next
fine-tune (`autodistill.atomic_file.remove_dead_temporaries`).

Training reuses the distillation loop: regular stages whose only loss is the model's own
task loss (no teacher term), so optimiser, schedule, clipping, NaN checks and precision
(the run's `precision`: autocast, fp16's gradient scaler, bf16 refused on a CPU without bf16
hardware unless `precision_force`) are the same code.

A head the checkpoint lacks (the parameters `from_pretrained` initialised fresh: a masked-LM
head on an encoder saved as `BertModel`) can be adapted first (`head_epochs`): its square dense
layers start as the identity (the transform passes the encoder's states on; BERT's decoder is
tied to the pretrained word embeddings, so the head scores tokens from its first step) and it
trains alone at `head_learning_rate`, the rest frozen, before the whole model trains at the
fine-tune's `learning_rate`. A random head under one low rate leaves a MiniLM at masked-token
accuracy 0.05 after an epoch (docs/tasks.md); the head first is what makes it a usable teacher.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from autodistill.atomic_file import remove_dead_temporaries, temporary_path
from autodistill.config.plan import (
    DistillationPlan,
    LogitKD,
    OptimizerSpec,
    Precision,
    ScheduleSpec,
    Stage,
)
from autodistill.distill.distiller import Distiller

log = logging.getLogger(__name__)

DONE = "finetune.json"


def _model_identity(location: str) -> dict[str, Any]:
    folder = Path(location)
    if not folder.is_dir():
        return {"hub_name": location}
    files = sorted(p for p in folder.iterdir() if p.is_file())
    config = folder / "config.json"
    return {
        "config_sha": hashlib.sha256(config.read_bytes()).hexdigest() if config.exists() else None,
        "files": [(p.name, p.stat().st_size) for p in files if p.suffix in (".safetensors", ".bin")],
    }


def cache_key(location: str, settings: dict[str, Any], data: dict[str, Any]) -> str:
    blob = json.dumps({"model": _model_identity(location), "settings": settings, "data": data},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


HEAD_STAGE = "adapt the teacher's new head"


def fine_tune_plan(*, epochs: float, learning_rate: float, warmup_ratio: float, weight_decay: float,
                   seed: int, progress: bool, precision: Precision = "fp32", precision_force: bool = False,
                   target_loss: str = "CE", head: Sequence[str] = (), head_epochs: float = 0.0,
                   head_learning_rate: float = 1e-3) -> DistillationPlan:
    """The whole model trained on its task loss (`target_loss`, TARGET_LOSSES) for `epochs`; with
    `head` (parameter names) and `head_epochs`, those alone first, at `head_learning_rate`."""
    stage = Stage(name="fine-tune teacher", kind="regular", epochs=epochs,
                  logit_kd=LogitKD(loss_types=("CE", target_loss), loss_weights=(0.0, 1.0)),
                  optimizer=OptimizerSpec(name="AdamW", learning_rate=learning_rate,
                                          weight_decay=weight_decay),
                  schedule=ScheduleSpec(name="linear", warmup_ratio=warmup_ratio), max_grad_norm=1.0)
    stages: tuple[Stage, ...] = (stage,)
    if head and head_epochs:
        stages = (replace(stage, name=HEAD_STAGE, epochs=head_epochs, trainable=tuple(head),
                          optimizer=replace(stage.optimizer, learning_rate=head_learning_rate)), stage)
    return DistillationPlan(stages=stages, seed=seed, progress=progress, precision=precision,
                            precision_force=precision_force)


def fresh_head(model: nn.Module, missing: Sequence[str]) -> tuple[str, ...]:
    """The trainable parameters among `missing` (the checkpoint lacked them), by `named_parameters`
    name (a tied copy is named once); their square dense layers are set to the identity."""
    named = dict(model.named_parameters())
    head = tuple(name for name in missing if name in named)
    fresh = set(head)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear) and f"{name}.weight" in fresh \
                    and module.in_features == module.out_features:
                nn.init.eye_(module.weight)
                if module.bias is not None:
                    module.bias.zero_()
    return head


def _loss_summary(losses: Sequence[float]) -> str:
    return f"loss {losses[0]:.2f} -> {losses[-1]:.2f}" if losses else "no steps"


def fine_tuned(location: str, *, key: str, cache_root: Path, train: Any,
               plan: Callable[[tuple[str, ...]], DistillationPlan],
               load: Callable[[str], tuple[PreTrainedModel, tuple[str, ...]]], save_tokenizer: Any, quiet: bool,
               evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None) -> tuple[Path, bool]:
    """The folder of the fine-tuned teacher and whether it was reused; fine-tune if missing.

    `load(location)` returns the base model and the names of the parameters its checkpoint
    lacked; `plan(head)` the plan given the fresh head's parameters (`fresh_head`); `train` is
    the training loader; `save_tokenizer(folder)` writes the tokenizer next to the model;
    `evaluate(model)` (optional) the fine-tuned model's validation figures, logged and recorded.
    """
    final = cache_root / key
    if (final / DONE).exists():
        log.info("reusing the fine-tuned teacher in %s", final)
        return final, True
    remove_dead_temporaries(cache_root)
    model, missing = load(location)
    head = fresh_head(model, missing)
    steps = plan(head)
    result = Distiller(model, model, steps, quiet=quiet).fit(train)
    figures = dict(evaluate(model)) if evaluate is not None else {}
    tmp = temporary_path(cache_root / key)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    save_tokenizer(tmp)
    record = result.stages[-1]
    seconds = sum(stage.seconds for stage in result.stages)
    (tmp / DONE).write_text(json.dumps({"base": location, "precision": steps.precision,
                                        "steps": len(record.losses),
                                        "seconds": seconds,
                                        "last_loss": record.losses[-1] if record.losses else None,
                                        "stages": {s.name: {"steps": len(s.losses), "seconds": s.seconds,
                                                            "last_loss": s.losses[-1] if s.losses else None}
                                                   for s in result.stages},
                                        "validation": figures}))
    try:
        tmp.rename(final)
    except OSError:  # the folder exists
        if (final / DONE).exists():  # another worker's complete copy: use it
            shutil.rmtree(tmp, ignore_errors=True)
        else:  # incomplete (DONE is written before the rename): replace it
            shutil.rmtree(final)
            tmp.rename(final)
    stages = {s.name: s for s in result.stages}
    adapted = stages.get(HEAD_STAGE)
    log.info("fine-tuned the teacher in %.0f s into %s: %s%s%s", seconds, final,
             f"its new head ({len(head)} tensors, e.g. {head[0]}) adapted alone for {len(adapted.losses)} steps "
             f"({_loss_summary(adapted.losses)}), then " if adapted is not None else "",
             f"the whole teacher for {len(record.losses)} steps ({_loss_summary(record.losses)})",
             "; validation " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()) if figures else "")
    return final, False
