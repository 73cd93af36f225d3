"""The command line: a thin layer over the API. Errors print one line and exit with 2.

    autodistill search CONFIG.yaml [--storage URL] [--study-name N] [--output-dir D] [--max-trials K]
                                   [--search-algorithm A]
    autodistill show [CONFIG.yaml | --storage URL] [--study-name N] [--json]
    autodistill export --trial N --out DIR [CONFIG.yaml | --storage URL]
    autodistill dashboard [CONFIG.yaml | --storage URL] [--port P]
    autodistill distill CONFIG.yaml
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from autodistill.errors import AutodistillError, ConfigError


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


def _search(args: argparse.Namespace) -> int:
    from autodistill.study.run import load_search_config, run_search

    config = load_search_config(args.config)
    result = run_search(config, storage=args.storage, study_name=args.study_name,
                        output_dir=args.output_dir, max_trials=args.max_trials,
                        search_algorithm=args.search_algorithm, quiet=args.quiet)
    print(f"Pareto front of study {result.study.study_name!r} ({len(result.study.trials)} trials):")
    print(result.table)
    print(f"written to {result.pareto_json}")
    return 0


def _study(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The study named by --storage/--study-name, or by a config file's defaults."""
    from autodistill.study.storage import default_storage_url, load_existing_study

    storage, name, out = args.storage, args.study_name, Path(args.output_dir) if args.output_dir else None
    if args.config is not None:
        from autodistill.study.run import load_search_config, resolve_study

        storage, name, out = resolve_study(load_search_config(args.config), storage=storage,
                                           study_name=name, output_dir=args.output_dir)
    if storage is None:
        if out is None:
            raise ConfigError("name the study: give CONFIG.yaml, --storage URL or --output-dir DIR")
        storage = default_storage_url(out)
        if not (out / "study.db").exists():
            raise ConfigError(f"no study database at {out / 'study.db'}; give --storage URL")
    return load_existing_study(storage, name), out


def _show(args: argparse.Namespace) -> int:
    from autodistill.study.pareto import format_table, front_rows
    from autodistill.study.run import TEACHER_ATTR

    study, _ = _study(args)
    teacher = study.user_attrs.get(TEACHER_ATTR)
    rows = front_rows(study, teacher=teacher)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
        print(format_table(rows, metric_names=names, teacher=teacher))
    return 0


def _export(args: argparse.Namespace) -> int:
    from optuna.trial import TrialState

    from autodistill.study.trials import STUDENT_PATH

    study, _ = _study(args)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    trial = trials.get(args.trial)
    if trial is None or trial.state != TrialState.COMPLETE:
        done = sorted(n for n, t in trials.items() if t.state == TrialState.COMPLETE)
        raise ConfigError(f"trial {args.trial} is not a completed trial of study {study.study_name!r}; "
                          f"completed: {done}")
    source = Path(trial.user_attrs.get(STUDENT_PATH, ""))
    if not source.is_dir():
        raise ConfigError(f"trial {args.trial}'s student folder {str(source)!r} is missing")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {str(out)!r} exists and is not empty; choose a new folder")
    shutil.copytree(source, out, dirs_exist_ok=True)
    print(f"trial {args.trial} exported to {out} (load it with from_pretrained)")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard

    study, _ = _study(args)
    print(f"optuna-dashboard for study {study.study_name!r} at http://{args.host}:{args.port}/ "
          "(Ctrl-C stops it)", flush=True)
    try:
        optuna_dashboard.run_server(study._storage, host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    return 0


def _study_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="the search's YAML config (for its storage and name)")
    parser.add_argument("--storage", help="SQLAlchemy URL of the study storage")
    parser.add_argument("--study-name", help="the study's name (optional when the storage has one)")
    parser.add_argument("--output-dir", help="the search's output directory (holds study.db)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autodistill", description="Knowledge-distillation NAS.")
    commands = parser.add_subparsers(dest="command", required=True)

    search = commands.add_parser("search", help="search student architectures (resumable)")
    search.add_argument("config", help="YAML config: teacher, data, auto_distillation")
    search.add_argument("--storage", help="SQLAlchemy URL (default sqlite:///<output_dir>/study.db)")
    search.add_argument("--study-name", help="study name (default: the config's)")
    search.add_argument("--output-dir", help="output directory (default: the config's)")
    search.add_argument("--max-trials", type=int, help="total trials in the study (default: the config's)")
    search.add_argument("--search-algorithm", help="advisor (default: the config's): BO, TPE, random, ...")
    search.add_argument("--quiet", action="store_true", help="no progress bars")
    search.set_defaults(run=_search)

    show = commands.add_parser("show", help="the Pareto front of a study")
    _study_options(show)
    show.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    show.set_defaults(run=_show)

    export = commands.add_parser("export", help="copy a trial's student (save_pretrained folder)")
    _study_options(export)
    export.add_argument("--trial", type=int, required=True, help="trial number")
    export.add_argument("--out", required=True, help="new folder for the student")
    export.set_defaults(run=_export)

    dashboard = commands.add_parser("dashboard", help="start optuna-dashboard on the study storage")
    _study_options(dashboard)
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8080)
    dashboard.set_defaults(run=_dashboard)

    distill = commands.add_parser("distill", help="distil one given student from a config file, no search")
    distill.add_argument("config", help="YAML config with teacher, student, data and distillation")
    distill.add_argument("--output-dir", help="where the student is saved (overrides output_dir)")
    distill.add_argument("--quiet", action="store_true", help="no progress bars")
    distill.set_defaults(run=_distill)
    return parser


def _quiet_libraries() -> None:
    """Warnings and errors on stderr; our INFO goes to the run's log file only; no HF save bars."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    try:
        return args.run(args)
    except AutodistillError as exc:
        print(f"autodistill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autodistill: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
