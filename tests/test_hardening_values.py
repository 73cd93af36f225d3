"""Values checked before any work (issue 17, "Checked before any work, or it is a bug").

Each class of value that used to pass validation and then fail every trial, fail after the
teacher's fine-tune, or end in a traceback has rows in `CASES`, run through the real command line
by the harness of tests/test_bad_inputs.py: exit 2, one stderr line naming the key (or the flag)
and the fix, no traceback, every file byte for byte as before, nothing trained. Rows whose check
needs the teacher's config give the teacher a fine-tune, so the refusal must come before it.

The classes are held as classes too: every config section refuses non-finite floats, every int
field has an upper bound, every weight is >= 0 (`test_every_...`), and a property test feeds
random edits of the valid search config to the command line: it ends with one error line or
reaches the work (the teacher's benchmark, a fine-tune or training), never with a traceback, an
internal error or a file written outside the run's output folder.

Failure accounting (study/search.py): a search whose trials all fail exits non-zero with the
reason; a failure a rerun cannot fix costs no max_trials.
"""

from __future__ import annotations

import os
import re
import tempfile
import typing
from pathlib import Path
from typing import Annotated, Any

import annotated_types
import optuna
import pytest
import test_bad_inputs as harness
import torch
import yaml
from conftest import tiny_bert
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from test_bad_inputs import Case, no_training  # noqa: F401  (the harness's fixture)

from autodistill.cli import main
from autodistill.config.schema import DistillRunConfig, SearchRunConfig, SearchSection
from autodistill.config.sections import INT_MAX, SEED_MAX, Section
from autodistill.errors import CaptureError, ConfigError, MappingError, NonFiniteLossError
from autodistill.study.outcomes import rerun_fails_again
from autodistill.study.record import FAILURE_REASON, RERUN_FAILS_AGAIN
from autodistill.study.search import AutoDistillation, SearchStopped
from autodistill.study.trials import finished_count

FINE_TUNE = ("  model: {root}/teacher\n", "  model: {root}/teacher\n  fine_tune: {epochs: 1}\n")
REGULAR = "  regular_distillation:\n    train_steps: 1\n"
LATENCY = "latency: {batch_size: 1, warmup: 1, repeats: 20, threads: 1}"
SPACE = r"auto_distillation\.search\.search_space"
FINITE = r"Input should be a finite number"


def _regular(extra: str) -> tuple[str, str]:
    return REGULAR, REGULAR + extra


CASES = [
    # -- non-finite floats, wherever a float is read ---------------------------------------------
    Case("temperature-inf", rf"regular_distillation\.temperature: {FINITE} \(got inf\)",
         replace=(_regular("    temperature: .inf\n"),)),
    Case("learning-rate-inf", rf"regular_distillation\.optimizer\.learning_rate: {FINITE} \(got inf\)",
         replace=(_regular("    optimizer: {learning_rate: .inf}\n"),)),
    Case("constraint-nan", rf"search\.constraints\.latency_ms: {FINITE} \(got nan\)",
         replace=(("    seed: 0\n", "    seed: 0\n    constraints: {latency_ms: .nan}\n"),)),
    Case("fine-tune-learning-rate-inf", rf"teacher\.fine_tune\.learning_rate: {FINITE} \(got -inf\)",
         replace=((FINE_TUNE[0], "  model: {root}/teacher\n  fine_tune: {learning_rate: -.inf}\n"),)),
    Case("optimizer-beta-out-of-range", r"optimizer\.betas\.1: Input should be less than 1 \(got 1\.0\)",
         replace=(_regular("    optimizer: {betas: [0.9, 1.0]}\n"),)),
    # -- weights: a negative one trains the student to maximise its loss ---------------------------
    Case("negative-flash-loss-weight", r"flash_distillation\.loss_weights\.0: Input should be greater than "
         r"or equal to 0 \(got -1\.0\)",
         replace=(("loss_types: [MSE]", "loss_types: [MSE]\n    loss_weights: [-1.0]"),)),
    Case("negative-logit-loss-weight", r"regular_distillation\.loss_weights\.0: Input should be greater "
         r"than or equal to 0 \(got -0\.5\)", replace=(_regular("    loss_weights: [-0.5, 1.5]\n"),)),
    Case("negative-mapping-weight", r"distillation\.flash_distillation\.layer_mappings_for_knowledge_transfer"
         r"\.0\.0\.weight: Input should be greater than or equal to 0 \(got -2\)", command="distill",
         replace=(("- - [bert.encoder.layer.0.output, bert.encoder.layer.1.output]",
                   "- - {student: bert.encoder.layer.0.output, teacher: bert.encoder.layer.1.output, weight: -2}"),)),
    Case("every-weight-zero", r"regular_distillation: every loss weight is 0 \(\[0\.0, 0\.0\]\), so the stage "
         r"would train nothing; give some loss a weight above 0", replace=(_regular("    loss_weights: [0, 0]\n"),)),
    Case("every-flash-weight-zero", r"flash_distillation: every loss weight is 0",
         replace=(("loss_types: [MSE]", "loss_types: [MSE]\n    loss_weights: [0]"),)),
    # -- every value of every dimension through the builder's rules (before the fine-tune) --------
    Case("zero-heads", rf"{SPACE}\.num_attention_heads: num_attention_heads is a size or count and must be "
         r">= 1, got 0", replace=(FINE_TUNE, ("num_attention_heads: [2, 4]", "num_attention_heads: [0]"))),
    Case("negative-hidden-size", rf"{SPACE}\.hidden_size: hidden_size is a size or count and must be >= 1, "
         r"got -8", replace=(FINE_TUNE, ("hidden_size: [8, 16]", "hidden_size: [-8]"))),
    Case("float-for-an-int-key", rf"{SPACE}\.hidden_size: hidden_size \(BertConfig holds 32\) takes an "
         r"integer, got 16\.0; write 16", replace=(FINE_TUNE, ("hidden_size: [8, 16]", "hidden_size: [16.0]"))),
    Case("float-range-for-an-int-key", rf"{SPACE}\.hidden_size: low: hidden_size \(BertConfig holds 32\) "
         r"takes an integer, got 8\.0; write 8",
         replace=(FINE_TUNE, ("hidden_size: [8, 16]", "hidden_size: {low: 8.0, high: 16.0}"))),
    Case("int-range-reaching-zero", rf"{SPACE}\.num_hidden_layers: low: num_hidden_layers is a size or "
         r"count and must be >= 1, got 0",
         replace=(FINE_TUNE, ("num_hidden_layers: {low: 1, high: 2}", "num_hidden_layers: {low: 0, high: 2}"))),
    Case("string-for-an-int-key", rf"{SPACE}\.num_attention_heads: num_attention_heads \(BertConfig holds 4\) "
         r"takes an integer, got 'two'", replace=(("num_attention_heads: [2, 4]", "num_attention_heads: [two]"),)),
    Case("fixed-probability-above-one", r"student\.fixed\.hidden_dropout_prob: hidden_dropout_prob is a "
         r"probability and must be in \[0, 1\], got 1\.5",
         replace=(FINE_TUNE, ("data:\n", "student: {fixed: {hidden_dropout_prob: 1.5}}\ndata:\n"))),
    Case("distill-override-float-for-int", r"student\.overrides\.hidden_size: hidden_size \(BertConfig holds "
         r"32\) takes an integer, got 16\.0; write 16", command="distill",
         replace=(("hidden_size: 16,", "hidden_size: 16.0,"),)),
    Case("mixed-types-in-a-categorical", r"search space dimension 'hidden_size': choices must all be of one "
         r"type, got int and str in \[8, '16'\]; write them alike",
         replace=(("hidden_size: [8, 16]", "hidden_size: [8, '16']"),)),
    # -- lengths against the teacher's position embeddings (its config, read without weights) -----
    Case("max-length-above-positions", r"data\.max_length is 64 but the teacher's max_position_embeddings is "
         r"32: longer inputs have no position embedding; set data\.max_length to 32 or less",
         replace=(FINE_TUNE, ("max_length: 12", "max_length: 64"))),
    Case("latency-length-above-positions", r"evaluation\.latency\.sequence_length is 40 but the teacher's "
         r"max_position_embeddings is 32", replace=(FINE_TUNE, (LATENCY, LATENCY[:-1] + ", sequence_length: 40}"))),
    Case("searched-positions-below-max-length", rf"{SPACE}\.max_position_embeddings: max_position_embeddings 8 "
         r"is below the inputs' length 12 \(data\.max_length, .*use at least 12",
         replace=(FINE_TUNE, (harness.ARCH_SPACE, harness.ARCH_SPACE + "      max_position_embeddings: [8, 32]\n"))),
    Case("distill-max-length-above-positions", r"data\.max_length is 64 but teacher\.model '.*/teacher''s "
         r"max_position_embeddings is 32", command="distill", replace=(("max_length: 12", "max_length: 64"),)),
    # -- how models are loaded: checked on the meta device, not after the teacher's fine-tune --------
    Case("teacher-attention-unknown", r"teacher\.attn_implementation: 'bogus' cannot be used: .*\"eager\"",
         replace=((FINE_TUNE[0],
                   "  model: {root}/teacher\n  fine_tune: {epochs: 1}\n  attn_implementation: bogus\n"),)),
    Case("student-attention-unknown", r"student\.attn_implementation: 'bogus' cannot be used: ",
         replace=(FINE_TUNE, ("data:\n", "student: {attn_implementation: bogus}\ndata:\n"))),
    Case("distill-teacher-attention-unknown", r"teacher\.attn_implementation: 'bogus' cannot be used: ",
         command="distill",
         replace=(("  model: {root}/teacher\n", "  model: {root}/teacher\n  attn_implementation: bogus\n"),)),
    # -- devices this machine lacks, before the teacher loads or is fine-tuned ----------------------
    Case("latency-device-missing", r"auto_distillation\.evaluation\.latency\.device is 'cuda:7' but ",
         replace=(FINE_TUNE, (LATENCY, LATENCY[:-1] + ", device: 'cuda:7'}"))),
    Case("latency-device-not-a-device", r"auto_distillation\.evaluation\.latency\.device is 'gpu', which is not "
         r"a device name; use 'cpu', 'cuda', 'cuda:0' or 'mps'",
         replace=(FINE_TUNE, (LATENCY, LATENCY[:-1] + ", device: gpu}"))),
    Case("training-device-missing", r"auto_distillation\.device is 'cuda:7' but ",
         replace=(FINE_TUNE, ("  seed: 3\n", "  seed: 3\n  device: 'cuda:7'\n"))),
    Case("distill-device-missing", r"distillation\.device is 'cuda:7' but ", command="distill",
         replace=(("  progress: false\n", "  progress: false\n  device: 'cuda:7'\n"),)),
    # -- seeds in [0, 2**32 - 1]; counts bounded by the C int they reach ---------------------------
    Case("negative-search-seed", r"search\.seed: Input should be greater than or equal to 0 \(got -1\)",
         replace=(("    seed: 0\n", "    seed: -1\n"),)),
    Case("seed-too-large", rf"auto_distillation\.seed: Input should be less than or equal to {SEED_MAX} "
         rf"\(got {SEED_MAX + 1}\)", replace=(("  seed: 3\n", f"  seed: {SEED_MAX + 1}\n"),)),
    Case("fine-tune-seed-negative", r"teacher\.fine_tune\.seed: Input should be greater than or equal to 0",
         replace=((FINE_TUNE[0], "  model: {root}/teacher\n  fine_tune: {seed: -5}\n"),)),
    Case("heartbeat-too-large", rf"search\.heartbeat_seconds: Input should be less than or equal to {INT_MAX}",
         replace=(("    seed: 0\n", "    seed: 0\n    heartbeat_seconds: 10000000000\n"),)),
    Case("train-steps-too-large", rf"regular_distillation\.train_steps: Input should be less than or equal "
         rf"to {INT_MAX}", replace=((REGULAR, "  regular_distillation:\n    train_steps: 99999999999\n"),)),
    Case("batch-size-too-large", rf"data\.batch_size: Input should be less than or equal to {INT_MAX}",
         replace=(("batch_size: 16", "batch_size: 3000000000"),)),
    # -- command-line overrides: the rules of the keys they override, the flag named ---------------
    Case("max-trials-negative", r"^autodistill: error: --max-trials: Input should be greater than or equal to 1 "
         r"\(got -1\); it overrides the config's max_trials$", args=("--max-trials", "-1")),
    Case("max-trials-zero", r"--max-trials: Input should be greater than or equal to 1 \(got 0\)",
         args=("--max-trials", "0"), subprocess=True),
    Case("max-trials-too-large", rf"--max-trials: Input should be less than or equal to {INT_MAX}",
         args=("--max-trials", "99999999999")),
    Case("output-dir-empty", r"--output-dir: String should have at least 1 character \(got ''\); it overrides "
         r"the config's output_dir", args=("--output-dir", "")),
    Case("output-dir-empty-distill", r"--output-dir: String should have at least 1 character", command="distill",
         args=("--output-dir", "")),
    Case("output-dir-empty-in-config", r"config\.yaml:\d+:\d+: output_dir: String should have at least 1 character",
         replace=(("output_dir: {out}", "output_dir: ''"),)),
    Case("max-trials-not-a-number", r"autodistill search: argument --max-trials: invalid int value: 'many' "
         r"\(see autodistill search --help\)", args=("--max-trials", "many"), subprocess=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_value_is_refused_before_any_work(case, workspace, tmp_path, capsys, no_training):  # noqa: F811
    """Exit 2, one line naming the key and the fix, no traceback, no file changed, nothing trained."""
    harness.test_bad_input(case, workspace, tmp_path, capsys, no_training)


def test_the_rows_cover_every_class_the_issue_names():
    ids = {c.id for c in CASES}
    assert len(ids) == len(CASES)
    for kind in ("temperature-inf", "learning-rate-inf", "negative-flash-loss-weight", "zero-heads",
                 "negative-hidden-size", "float-for-an-int-key", "float-range-for-an-int-key",
                 "mixed-types-in-a-categorical", "max-length-above-positions", "max-trials-negative",
                 "max-trials-zero", "latency-device-missing", "negative-search-seed", "seed-too-large",
                 "heartbeat-too-large"):
        assert kind in ids


# -- the classes, held over every section ----------------------------------------------------------

def _models(annotation: Any, found: set[type[BaseModel]]) -> set[type[BaseModel]]:
    """Every pydantic model in `annotation` and, recursively, in the fields of those models."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in found:
            found.add(annotation)
            for field in annotation.model_fields.values():
                _models(field.annotation, found)
        return found
    for arg in typing.get_args(annotation):
        _models(arg, found)
    return found


SECTIONS = sorted(_models(SearchRunConfig, set()) | _models(DistillRunConfig, set()), key=lambda m: m.__name__)


def _metadata(annotation: Any, metadata: tuple = ()) -> list[tuple[type, tuple]]:
    """(scalar type, its constraints) for every int and float inside `annotation`, dict values aside
    (student.fixed/overrides: the builder's rules check those; search_space: the space's)."""
    if typing.get_origin(annotation) is Annotated:
        base, *extra = typing.get_args(annotation)
        return _metadata(base, (*metadata, *extra))
    if annotation in (int, float):
        return [(annotation, metadata)]
    if typing.get_origin(annotation) is dict:
        return []
    return [found for arg in typing.get_args(annotation) for found in _metadata(arg)]


def _bounds(metadata: tuple) -> list[Any]:
    out = []
    for item in metadata:
        out += _bounds(tuple(item.metadata)) if isinstance(item, FieldInfo) else [item]
    return out


def _fields(kind: type):
    for model in SECTIONS:
        for name, field in model.model_fields.items():
            for scalar, metadata in _metadata(field.annotation, tuple(field.metadata)):
                if scalar is kind:
                    yield f"{model.__name__}.{name}", name, _bounds(metadata)


def test_every_section_refuses_non_finite_floats():
    assert len(SECTIONS) > 20
    for model in SECTIONS:
        assert issubclass(model, Section) and model.model_config.get("allow_inf_nan") is False, model


def test_every_int_field_has_an_upper_bound():
    fields = list(_fields(int))
    assert len(fields) > 25
    unbounded = [where for where, _, bounds in fields
                 if not any(isinstance(b, (annotated_types.Le, annotated_types.Lt)) for b in bounds)]
    assert unbounded == []


def test_every_seed_is_in_the_range_samplers_take():
    seeds = [(where, bounds) for where, name, bounds in _fields(int) if name.endswith("seed")]
    assert len(seeds) >= 4
    for where, bounds in seeds:
        assert annotated_types.Ge(0) in bounds and annotated_types.Le(SEED_MAX) in bounds, where


def test_every_weight_is_non_negative():
    weights = [(where, bounds) for where, name, bounds in _fields(float)
               if "weight" in name and name != "weight_decay"]
    assert len(weights) >= 6
    for where, bounds in weights:
        assert annotated_types.Ge(0) in bounds, where


def test_a_command_line_override_is_validated_like_the_key():
    section = SearchSection(search_space={"hidden_size": [8, 16]}, max_trials=3)
    assert section.overridden(max_trials=None) is section
    assert section.overridden(max_trials=5, search_algorithm="TPE").max_trials == 5
    with pytest.raises(ConfigError, match=r"^--search-algorithm: unknown .*'annealing'"):
        section.overridden(search_algorithm="annealing")
    with pytest.raises(ConfigError, match=r"^--max-trials: .* \(got -1\); it overrides the config's max_trials"):
        section.overridden(max_trials=-1)


# -- random edits of the valid search config, through the command line -----------------------------

class ReachedTheWork(BaseException):
    """Raised where the run starts real work: no except-Exception handler may swallow it."""


@pytest.fixture
def stop_at_the_work(monkeypatch):
    from autodistill.distill.distiller import Distiller
    from autodistill.distill.teacher_cache import TeacherCache
    from autodistill.study import task

    def reached(*args, **kwargs):
        raise ReachedTheWork

    monkeypatch.setattr(Distiller, "_run_stage", reached)
    monkeypatch.setattr(TeacherCache, "_build", reached)
    monkeypatch.setattr(task, "measure_latency", reached)
    monkeypatch.setattr(task, "measure_latencies", reached)
    monkeypatch.setattr("autodistill.distill_run.build_student", reached)  # distill's student: sizes are random


def _under(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root.resolve())


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_edits_of_a_valid_config_end_in_one_error_line_or_reach_the_work(
        data, workspace, tmp_path, capsys, stop_at_the_work):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    out = harness._existing_run(folder, other_objectives=False)
    command = data.draw(st.sampled_from(["search", "distill"]))
    text = harness.SEARCH_YAML if command == "search" else harness.DISTILL_YAML
    good = yaml.safe_load(harness._fill(text, root=workspace, out=out))
    config = data.draw(harness.edited(good))
    default = "runs/search" if command == "search" else "runs/distill"
    output = config.get("output_dir", default) if isinstance(config, dict) else None
    if isinstance(output, str) and Path(output).is_absolute() and not _under(output, folder):
        config["output_dir"] = output = good["output_dir"]  # a random absolute folder would be the run's own
    path = folder / "config.yaml"
    path.write_text(harness._dump(config))
    before, fixtures = harness.snapshot(folder), harness.snapshot(workspace)
    cwd = os.getcwd()
    os.chdir(folder)  # a relative output_dir lands in the example's folder
    try:
        code = main([command, str(path), "--quiet"])
    except ReachedTheWork:
        code = None
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    event(f"{command}: {'reached the work' if code is None else 'refused'}")
    assert "Traceback" not in err and "internal error" not in err, err
    if code is not None:
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("autodistill: error: "), err
    own = folder / output if isinstance(output, str) else None  # None: no output folder was valid
    assert _outside(harness.snapshot(folder), folder, own) == _outside(before, folder, own)
    assert harness.snapshot(workspace) == fixtures


def _outside(files: dict[str, str], folder: Path, own: Path | None) -> dict[str, str]:
    """The entries of a snapshot of `folder` that are neither under the run's output folder `own`
    nor one of the folders above it (made to hold it)."""
    def own_or_above(name: str) -> bool:
        return own is not None and (_under(str(folder / name), own) or _under(str(own), folder / name))

    return {name: digest for name, digest in files.items() if not own_or_above(name)}


# -- failure accounting: all failed, and failures a rerun cannot fix ---------------------------------

def _agent(tmp_path: Path, train, *, space=None, **section) -> AutoDistillation:
    config = SearchSection(search_space=space or {"hidden_size": [8, 16], "num_hidden_layers": {"low": 1, "high": 2}},
                           search_algorithm="random", metrics=["accuracy", "params"],
                           higher_is_better=[True, False], seed=1, **section)
    return AutoDistillation(lambda a: tiny_bert(hidden=a["hidden_size"], layers=a["num_hidden_layers"], heads=2),
                            config, train_func=train,
                            eval_func=lambda m: {"accuracy": 0.5, "params": float(m.config.hidden_size)},
                            storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="s", output_dir=tmp_path,
                            progress=False)


@pytest.mark.parametrize("error, again", [
    (ConfigError("x"), True), (CaptureError("x"), True), (MappingError("x"), True), (ValueError("x"), True),
    (TypeError("x"), True), (KeyError("x"), True), (AttributeError("x"), True),
    (torch.cuda.OutOfMemoryError("CUDA out of memory"), False), (MemoryError(), False),
    (RuntimeError("CUDA error: an illegal memory access"), False), (OSError("disk full"), False),
    (NonFiniteLossError("regular", 0, float("nan")), False),
])
def test_which_failures_a_rerun_cannot_fix(error, again):
    assert rerun_fails_again(error) is again


def test_a_search_whose_trials_all_fail_stops_with_the_reason(tmp_path):
    def train(model):
        raise RuntimeError("CUDA error: device-side assert triggered")

    agent = _agent(tmp_path, train, max_trials=2, max_consecutive_failures=5)
    with pytest.raises(SearchStopped, match=r"every trial of study 's' failed; the last one: RuntimeError: "
                                            r"CUDA error: device-side assert triggered\. Fix the cause and "
                                            r"run the same command again with a larger --max-trials \(these "
                                            r"failures used all 2\)$"):
        agent.search_loop()
    assert finished_count(agent.study) == 2  # transient failures count


def test_failures_a_rerun_cannot_fix_cost_no_budget(tmp_path):
    def train(model):
        if model.config.hidden_size == 16:
            raise ValueError("shapes (4, 16) and (8,) do not match")
        return model

    agent = _agent(tmp_path, train, max_trials=2, max_consecutive_failures=10)
    agent.search_loop()
    trials = agent.study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs[RERUN_FAILS_AGAIN] and "ValueError" in t.user_attrs[FAILURE_REASON]
                          for t in failed)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == finished_count(agent.study) == 2


def test_repeats_between_failures_do_not_break_the_row(tmp_path):
    """One architecture trains, the other always fails, proposed in turn: the repeats of the first
    between failures of the second train nothing and must not restart the count of failures in a
    row (with failures that cost no budget, the search would otherwise never end)."""
    calls = []

    def train(model):
        calls.append(model.config.hidden_size)
        if model.config.hidden_size == 16:
            raise TypeError("forward() got an unexpected keyword argument 'labels'")
        return model

    agent = _agent(tmp_path, train, space={"hidden_size": [8, 16], "num_hidden_layers": [1]}, max_trials=5,
                   max_consecutive_failures=3)
    for _ in range(10):
        for hidden in (8, 16):
            agent.study.enqueue_trial({"hidden_size": hidden, "num_hidden_layers": 1}, skip_if_exists=False)
    with pytest.raises(SearchStopped, match=r"3 trials failed in a row .* TypeError: forward\(\) got"):
        agent.search_loop()
    assert calls == [8, 16, 16, 16] and finished_count(agent.study) == 1


def test_an_all_failed_search_exits_non_zero_through_the_command_line(workspace, tmp_path, monkeypatch, capsys):
    (tmp_path / "broken_train.py").write_text(
        "def train(model):\n    raise RuntimeError('CUDA error: unspecified launch failure')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    text = harness._fill(harness.SEARCH_YAML, root=workspace, out=out).replace(
        "    max_trials: 2\n",
        "    max_trials: 2\n    max_consecutive_failures: 5\n    train_func: broken_train:train\n")
    (tmp_path / "config.yaml").write_text(text)
    assert main(["search", str(tmp_path / "config.yaml"), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and re.match(r"autodistill: error: every trial of study 'tiny' failed; the last one: "
                                        r"RuntimeError: CUDA error: unspecified launch failure", lines[0])
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
