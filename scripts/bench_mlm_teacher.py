"""How good a masked-LM teacher does `teacher.fine_tune` make, and at what CPU cost?

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_mlm_teacher.py \\
        --fine-tune '{epochs: 2, learning_rate: 3.0e-4, head_epochs: 1, head_learning_rate: 1.0e-3}'

Builds the search task of CONFIG (default configs/mlm.yaml) with its `teacher.fine_tune` replaced
by `--fine-tune` (YAML) and the output under `--output-dir` (a fresh temporary folder unless
given), which adapts the teacher as a search would; prints the fine-tune's record
(finetune.json: steps and last loss per stage, masked-token accuracy and perplexity on the
validation split) and the CPU seconds of the whole (process time, all threads), with the load.
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
    args = parser.parse_args()
    raw = yaml.safe_load(Path(args.config).read_text())
    if args.fine_tune is not None:
        raw["teacher"]["fine_tune"] = yaml.safe_load(args.fine_tune)
    config = validate(SearchRunConfig, raw, source=args.config)
    out = Path(args.output_dir or tempfile.mkdtemp(prefix="bench_mlm_teacher-"))

    from autodistill.study.task import DistillationTask

    started, load = time.process_time(), os.getloadavg()[0]
    task = DistillationTask(config, output_dir=out, quiet=True)
    cpu = time.process_time() - started
    record = json.loads((Path(task.teacher_location) / "finetune.json").read_text())
    print(json.dumps({"fine_tune": config.teacher.fine_tune.model_dump() if config.teacher.fine_tune else None,
                      "record": record, "cpu_seconds": round(cpu, 1),
                      "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)], "output_dir": str(out)}, indent=1))


if __name__ == "__main__":
    main()
