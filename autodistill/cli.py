"""The command line: a thin layer over the API. Errors print one line and exit with 2."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from autodistill.errors import AutodistillError


def _distill(args: argparse.Namespace) -> int:
    from autodistill.distill.run import load_run_config, run_distillation

    config = load_run_config(args.config).with_overrides(output_dir=args.output_dir)
    result = run_distillation(config, quiet=args.quiet)
    for stage in result.fit.stages:
        first = stage.losses[0] if stage.losses else float("nan")
        last = stage.losses[-1] if stage.losses else float("nan")
        print(f"{stage.name:<40} {len(stage.losses):>6} steps  loss {first:.4f} -> {last:.4f}  "
              f"{stage.steps_per_second:.1f} steps/s")
    if result.accuracy is not None:
        print(f"validation accuracy: student {result.accuracy:.4f}, teacher {result.teacher_accuracy:.4f}")
    print(f"student saved to {result.output_dir} ({result.seconds:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autodistill", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    distill = commands.add_parser("distill", help="distil one given student from a config file, no search")
    distill.add_argument("config", help="YAML config with teacher, student, data and distillation")
    distill.add_argument("--output-dir", help="where the student is saved (overrides output_dir)")
    distill.add_argument("--quiet", action="store_true", help="no progress bars")
    distill.set_defaults(run=_distill)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except AutodistillError as exc:
        print(f"autodistill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autodistill: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
