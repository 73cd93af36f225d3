"""How good a masked-LM teacher does `teacher.fine_tune` make, and at what CPU cost?

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_mlm_teacher.py \\
        --fine-tune '{epochs: 2, learning_rate: 3.0e-4, head_epochs: 1, head_learning_rate: 1.0e-3}'

Builds the search task of CONFIG (default configs/mlm.yaml) with its `teacher.fine_tune` replaced
by `--fine-tune` (YAML) and the output under `--output-dir` (a fresh temporary folder unless
given), which adapts the teacher as a search would; prints the fine-tune's record
(finetune.json: steps and last loss per stage, masked-token accuracy and perplexity on the
validation split) and the CPU seconds of the whole (process time, all threads), with the load.

`--projection-cost N`: instead, the CPU seconds of N passes of the (unadapted) teacher over the
validation split with the vocabulary projection at every token and at the masked tokens only
(losses/scored_positions.py), interleaved, and the largest logit difference at the masked tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from autodistill.config.loader import validate
from autodistill.config.schema import SearchRunConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/mlm.yaml")
    parser.add_argument("--fine-tune", default=None, help="teacher.fine_tune as YAML (default: the config's)")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--projection-cost", type=int, default=0, metavar="N")
    args = parser.parse_args()
    raw = yaml.safe_load(Path(args.config).read_text())
    if args.fine_tune is not None:
        raw["teacher"]["fine_tune"] = yaml.safe_load(args.fine_tune)
    config = validate(SearchRunConfig, raw, source=args.config)
    if args.projection_cost:
        projection_cost(config, args.projection_cost)
        return
    out = Path(args.output_dir or tempfile.mkdtemp(prefix="bench_mlm_teacher-"))

    from autodistill.study.task import DistillationTask

    started, load = time.process_time(), os.getloadavg()[0]
    task = DistillationTask(config, output_dir=out, quiet=True)
    cpu = time.process_time() - started
    record = json.loads((Path(task.teacher_location) / "finetune.json").read_text())
    print(json.dumps({"fine_tune": config.teacher.fine_tune.model_dump() if config.teacher.fine_tune else None,
                      "record": record, "cpu_seconds": round(cpu, 1),
                      "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)], "output_dir": str(out)}, indent=1))


def projection_cost(config: SearchRunConfig, passes: int) -> None:
    import torch

    from autodistill.data.sources import load_splits
    from autodistill.losses.scored_positions import output_layer_at, scored_positions
    from autodistill.models.teacher import load_pretrained
    from autodistill.preflight import load_tokenizer
    from autodistill.tasks import TASK_KINDS

    kind, location = TASK_KINDS.get("masked_lm"), config.teacher.location()
    splits = load_splits(config.data, labels=kind.labels)
    _, validation, _ = kind.datasets(splits, load_tokenizer(location, key="teacher.model"),
                                     max_length=config.data.max_length, seed=config.data.split_seed)
    teacher = load_pretrained(location, model_cls="AutoModelForMaskedLM", role="teacher",
                              attn_implementation="eager").eval()
    size = config.data.batch_size
    batches = [{k: v[i:i + size] for k, v in validation.tensors.items() if k != "example_index"}
               for i in range(0, len(validation), size)]
    seconds, gap = {"every token": 0.0, "masked tokens": 0.0}, 0.0
    load = os.getloadavg()[0]
    with torch.inference_mode():
        for _ in range(passes):
            for batch in batches:
                inputs = {k: v for k, v in batch.items() if k != "labels"}
                positions = scored_positions(batch["attention_mask"], batch["labels"])
                started = time.process_time()
                full = teacher(**inputs).logits
                seconds["every token"] += time.process_time() - started
                started = time.process_time()
                with output_layer_at([teacher], positions):
                    scored = teacher(**inputs).logits
                seconds["masked tokens"] += time.process_time() - started
                gap = max(gap, float((full[positions] - scored).abs().max()))
    print(json.dumps({"cpu_seconds": {k: round(v, 2) for k, v in seconds.items()},
                      "ratio": round(seconds["masked tokens"] / seconds["every token"], 3),
                      "max_logit_difference": gap, "batches": len(batches) * passes,
                      "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)]}, indent=1))


if __name__ == "__main__":
    main()
