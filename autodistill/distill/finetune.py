"""Fine-tune a teacher on the training split once; later runs reuse the saved result.

The saved teacher lives in `<cache_root>/<key>/`, where the key hashes the base model
(its config and weight files), the training and validation data, the label names, the
sequence length and the fine-tuning settings: a change to any of them fine-tunes anew,
nothing else does. The folder is written under a temporary name and renamed when
complete, so a killed fine-tune is never mistaken for a finished one; workers that start
together each fine-tune into their own temporary folder, and the first to finish wins. A
temporary folder whose process is gone (killed while saving) is removed by the next
fine-tune (`autodistill.atomic_file.remove_dead_temporaries`).

Training reuses the distillation loop: one regular stage whose only loss is the model's
own task loss (no teacher term), so optimiser, schedule, clipping, NaN checks and precision
(the run's `precision`: autocast, fp16's gradient scaler, bf16 refused on a CPU without bf16
hardware unless `precision_force`) are the same code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

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


def fine_tune_plan(*, epochs: float, learning_rate: float, warmup_ratio: float, weight_decay: float,
                   seed: int, progress: bool, precision: Precision = "fp32",
                   precision_force: bool = False) -> DistillationPlan:
    stage = Stage(name="fine-tune teacher", kind="regular", epochs=epochs,
                  logit_kd=LogitKD(loss_weights=(0.0, 1.0)),
                  optimizer=OptimizerSpec(name="AdamW", learning_rate=learning_rate,
                                          weight_decay=weight_decay),
                  schedule=ScheduleSpec(name="linear", warmup_ratio=warmup_ratio), max_grad_norm=1.0)
    return DistillationPlan(stages=(stage,), seed=seed, progress=progress, precision=precision,
                            precision_force=precision_force)


def fine_tuned(location: str, *, key: str, cache_root: Path, train: Any, plan: DistillationPlan,
               load: Any, save_tokenizer: Any, quiet: bool) -> tuple[Path, bool]:
    """The folder of the fine-tuned teacher and whether it was reused; fine-tune if missing.

    `load(location)` returns the base model; `train` is the training loader;
    `save_tokenizer(folder)` writes the tokenizer next to the model.
    """
    final = cache_root / key
    if (final / DONE).exists():
        log.info("reusing the fine-tuned teacher in %s", final)
        return final, True
    remove_dead_temporaries(cache_root)
    model: PreTrainedModel = load(location)
    result = Distiller(model, model, plan, quiet=quiet).fit(train)
    tmp = temporary_path(cache_root / key)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    save_tokenizer(tmp)
    record = result.stages[0]
    (tmp / DONE).write_text(json.dumps({"base": location, "precision": plan.precision,
                                        "steps": len(record.losses),
                                        "seconds": record.seconds,
                                        "last_loss": record.losses[-1] if record.losses else None}))
    try:
        tmp.rename(final)
    except OSError:  # the folder exists
        if (final / DONE).exists():  # another worker's complete copy: use it
            shutil.rmtree(tmp, ignore_errors=True)
        else:  # incomplete (DONE is written before the rename): replace it
            shutil.rmtree(final)
            tmp.rename(final)
    log.info("fine-tuned the teacher in %.0f s into %s", record.seconds, final)
    return final, False
