"""Bad input, tried systematically: one table of broken inputs, each with the message it must give.

Every row of `CASES` is run through the real command line (`autodistill.cli.main`, or the console
script in a subprocess for a few rows, where stderr is the process's own) in a folder that already
holds a study with a trained trial, a student folder and a log. Each must give

- exactly one line on stderr, `autodistill: error: ...`, matching the row's pattern (the key, file,
  allowed values or fix), and no traceback;
- exit status 2;
- every file under the folder byte for byte as before (the study database included), no new file;
- no training: `Distiller._run_stage` (every stage of distillation and of the teacher's fine-tuning
  goes through it) and the teacher-cache build are never called.

`test_the_unedited_configs_train` runs the configs the rows edit, unedited, so the table's checks
can fail: the same harness sees training and new files there.

The property-based tests feed random YAML (random nested mappings of valid and invalid keys,
random edits of valid configs, and random text) to the config loader: it returns a config or
raises `ConfigError`, never anything else.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autodistill.cli import main
from autodistill.config.loader import _model_in, load_config_file, load_distillation_section
from autodistill.config.schema import DistillRunConfig, SearchRunConfig
from autodistill.errors import ConfigError

SEARCH_YAML = """\
model: {name: tiny}
teacher:
  model: {root}/teacher
data:
  train_file: {root}/train.csv
  validation_file: {root}/dev.csv
  max_length: 12
  batch_size: 16
auto_distillation:
  seed: 3
  progress: false
  search:
    search_space:
      hidden_size: [8, 16]
      num_hidden_layers: {low: 1, high: 2}
      num_attention_heads: [2, 4]
    search_algorithm: random
    metrics: [accuracy, latency]
    higher_is_better: [true, false]
    max_trials: 2
    seed: 0
  flash_distillation:
    block_names: bert.encoder.layer.{i}
    layer_mappings_for_knowledge_transfer:
      - ['bert.encoder.layer.{i}.output', 'bert.encoder.layer.{t}.output']
    loss_types: [MSE]
    train_steps: 1
  regular_distillation:
    train_steps: 1
  evaluation:
    latency: {batch_size: 1, warmup: 1, repeats: 20, threads: 1}
output_dir: {out}
"""

DISTILL_YAML = """\
teacher:
  model: {root}/teacher
student:
  overrides: {hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32}
data:
  train_file: {root}/train.csv
  validation_file: {root}/dev.csv
  max_length: 12
  batch_size: 16
distillation:
  progress: false
  flash_distillation:
    block_names: [bert.encoder.layer.0]
    layer_mappings_for_knowledge_transfer:
      - - [bert.encoder.layer.0.output, bert.encoder.layer.1.output]
    train_steps: [1]
  regular_distillation:
    train_steps: 1
output_dir: {out}-distilled
"""  # a new folder: `distill` refuses one holding other files (the search run's)

AS_REGRESSION = ("output_dir: {out}\n", "task: regression\noutput_dir: {out}\n")  # a `replace` edit
WITH_TRAINING_WINDOWS = ("  batch_size: 16\n", "  batch_size: 16\n  training_windows: true\n")
ARCH_SPACE = ("      hidden_size: [8, 16]\n      num_hidden_layers: {low: 1, high: 2}\n"
              "      num_attention_heads: [2, 4]\n")


@dataclass(frozen=True)
class Case:
    """One broken input. `replace` edits the good config text (each old text must occur in it);
    `args` are extra command-line arguments; `{tmp}` is the case's folder, `{root}` the fixtures'."""

    id: str
    expect: str  # a regular expression the one stderr line must match (after "autodistill: error: ")
    command: str = "search"
    replace: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    config: str | None = None  # a config path given instead of the written file
    text: str | None = None  # the whole config file instead of an edited good one
    other_objectives: bool = False  # the existing study has other objectives
    subprocess: bool = False


CASES = [
    # -- the file itself --------------------------------------------------------------------
    Case("yaml-syntax-error", r"config\.yaml:\d+:\d+: malformed YAML: ",
         replace=(("    max_trials: 2\n", "    max_trials: 2\n    oops: [1, 2\n"),), subprocess=True),
    Case("yaml-tab-indentation", r"config\.yaml:\d+:\d+: malformed YAML: found character '\\t'",
         replace=(("    seed: 0\n", "\tseed: 0\n"),)),
    Case("yaml-not-a-mapping", r"config\.yaml: expected a mapping of keys at the top, got list",
         text="- teacher: {root}/teacher\n- data: {root}/train.csv\n"),
    Case("config-file-missing", r"config file '.*no_such\.yaml' does not exist", config="{tmp}/no_such.yaml"),
    # -- keys and values -----------------------------------------------------------------------
    Case("unknown-key-nearest-valid", r"config\.yaml:\d+:\d+: auto_distillation\.search\.search_algoritm: "
         r"unknown key \(did you mean 'search_algorithm'.*\?\); allowed keys here: search_space, ",
         replace=(("search_algorithm: random", "search_algoritm: random"),)),
    Case("unknown-top-level-key", r"config\.yaml:\d+:\d+: output_dri: unknown key "
         r"\(did you mean 'output_dir'\?\)", command="distill", replace=(("output_dir:", "output_dri:"),)),
    Case("wrong-type", r"config\.yaml:\d+:\d+: auto_distillation\.search\.max_trials: Input should be a "
         r"valid integer.* \(got 'two'\)", replace=(("max_trials: 2", "max_trials: two"),)),
    Case("out-of-range", r"auto_distillation\.search\.max_trials: Input should be greater than or equal "
         r"to 1 \(got 0\)", replace=(("max_trials: 2", "max_trials: 0"),)),
    Case("negative-head-epochs", r"config\.yaml:\d+:\d+: teacher\.fine_tune\.head_epochs: Input should be greater "
         r"than or equal to 0 \(got -1\)",
         replace=(("  model: {root}/teacher\n",
                   "  model: {root}/teacher\n  fine_tune: {epochs: 1, head_epochs: -1}\n"),)),
    Case("dimension-not-a-list", r"search\.search_space: search space dimension 'hidden_size': expected "
         r"a list or a mapping, got 8; allowed forms: ",
         replace=(("hidden_size: [8, 16]", "hidden_size: 8"),)),
    Case("unknown-search-algorithm", r"search_algorithm: unknown .*'annealing'.*allowed: .*BO.*TPE",
         replace=(("search_algorithm: random", "search_algorithm: annealing"),)),
    Case("unknown-search-algorithm-option", r"--search-algorithm: unknown .*'annealing'.*allowed: .*TPE",
         args=("--search-algorithm", "annealing")),
    Case("unknown-loss-type", r"loss_types.*unknown loss type 'L7'.*allowed: MSE, KL, CE, cosine",
         replace=(("loss_types: [MSE]", "loss_types: [L7]"),)),
    Case("metric-without-direction", r"metric 'f1' has no direction",
         replace=(("metrics: [accuracy, latency]\n    higher_is_better: [true, false]",
                   "metrics: [accuracy, f1]"),)),
    Case("unknown-constraint", r"auto_distillation\.search\.constraints\.latency.*'latency_ms', 'params', "
         r"'size_mb' or 'min_speedup'", replace=(("    seed: 0\n", "    seed: 0\n    constraints: {latency: 5}\n"),)),
    Case("proxy-fine-tune-without-regular-stage", r"config\.yaml:\d+:\d+: auto_distillation: "
         r"supernet\.proxy_fine_tune_steps 5 trains each proxy by the regular distillation, but this config "
         r"has none; add regular_distillation or set supernet\.proxy_fine_tune_steps: 0",
         replace=(("  regular_distillation:\n    train_steps: 1\n", "  supernet: {proxy_fine_tune_steps: 5}\n"),)),
    Case("refit-proxy-head-of-another-task", r"config\.yaml:\d+:\d+: auto_distillation: supernet\.proxy_head: "
         r"refit fits a linear classifier on one label per text \(sequence_classification only\), but the task "
         r"is regression; set supernet\.proxy_head: sliced",
         replace=(("  regular_distillation:\n", "  supernet: {proxy_head: refit}\n  regular_distillation:\n"),
                  AS_REGRESSION)),
    Case("supernet-strategy-of-another-task", r"config\.yaml:\d+:\d+: auto_distillation: search\.strategy: "
         r"supernet trains and slices sequence classifiers \(KD on one class distribution per text plus "
         r"cross-entropy\), but the task is regression; set search\.strategy: per_trial",
         replace=(("    search_algorithm: random\n", "    search_algorithm: random\n    strategy: supernet\n"),
                  AS_REGRESSION)),
    Case("supernet-flag-of-another-task", r"search\.strategy: supernet trains and slices sequence classifiers "
         r".*but the task is regression; set search\.strategy: per_trial", args=("--strategy", "supernet"),
         replace=(AS_REGRESSION,
                  ("  regular_distillation:\n    train_steps: 1\n",
                   "  regular_distillation:\n    train_steps: 1\n    loss_types: [MSE, MSE]\n"))),
    Case("training-windows-of-labelled-texts", r"config\.yaml:\d+:\d+: data: training_windows: task "
         r"sequence_classification reads a label per text or per word, and a window cut from the middle of a "
         r"text may not show its label .*it is for task masked_lm.*; remove training_windows",
         replace=(WITH_TRAINING_WINDOWS,)),
    Case("training-windows-in-distill", r"config\.yaml:\d+:\d+: data: training_windows: task "
         r"sequence_classification reads a label per text.*remove training_windows", command="distill",
         replace=(WITH_TRAINING_WINDOWS,)),
    # -- the search space ----------------------------------------------------------------------
    Case("empty-search-space", r"search_space: .*the search space is empty; allowed forms: ",
         replace=((ARCH_SPACE, "      {}\n"),)),
    Case("no-valid-architecture", r"auto_distillation\.search\.search_space has no valid architecture: "
         r"none of the 4 combinations of hidden_size \[10, 14\] and num_attention_heads \[4, 8\] can be "
         r"built \(hidden_size 10 is not divisible by num_attention_heads 4\)",
         replace=(("hidden_size: [8, 16]", "hidden_size: [10, 14]"),
                  ("num_attention_heads: [2, 4]", "num_attention_heads: [4, 8]"))),
    Case("no-valid-architecture-with-fixed-heads", r"search_space has no valid architecture: none of the "
         r"2 combinations of hidden_size \[10, 14\] and num_attention_heads 4 \(student\.fixed\)",
         replace=(("hidden_size: [8, 16]", "hidden_size: [10, 14]"),
                  ("      num_attention_heads: [2, 4]\n", ""),
                  ("data:\n", "student: {fixed: {num_attention_heads: 4}}\ndata:\n"))),
    Case("search-space-changed-for-the-study", r"auto_distillation\.search\.search_space: study 'tiny' "
         r"searched hidden_size over \[8, 16\]; this config gives \[8, 32\]\. A study keeps its search space: "
         r"restore it, or give another --study-name", replace=(("hidden_size: [8, 16]", "hidden_size: [8, 32]"),)),
    Case("searched-key-the-teacher-lacks", r"BertConfig has no key 'num_attention_head' "
         r"\(did you mean 'num_attention_heads'",
         replace=(("num_attention_heads: [2, 4]", "num_attention_head: [2, 4]"),)),
    # -- files and models the config names -----------------------------------------------------
    Case("missing-teacher-path", r"teacher\.model: folder '.*/no_such_teacher' does not exist",
         replace=(("model: {root}/teacher", "model: {tmp}/no_such_teacher"),), subprocess=True),
    Case("missing-teacher-path-distill", r"teacher\.model: folder '.*/no_such_teacher' does not exist",
         command="distill", replace=(("model: {root}/teacher", "model: {tmp}/no_such_teacher"),)),
    Case("teacher-folder-is-not-a-model", r"teacher\.model: folder '.*/run' holds no config\.json",
         replace=(("model: {root}/teacher", "model: {tmp}/run"),)),
    Case("missing-data-file", r"no_such\.csv: no such file",
         replace=(("train_file: {root}/train.csv", "train_file: {root}/no_such.csv"),)),
    Case("layer-mapping-to-missing-student-module", r"auto_distillation\.flash_distillation\.layer_mappings_"
         r"for_knowledge_transfer: student has no module 'bert\.encoder\.layer\.0\.outptu'; closest existing "
         r"names: bert\.encoder\.layer\.0\.output",
         replace=(("'bert.encoder.layer.{i}.output'", "'bert.encoder.layer.{i}.outptu'"),)),
    Case("layer-mapping-to-missing-teacher-module", r"auto_distillation\.flash_distillation\.layer_mappings_"
         r"for_knowledge_transfer: teacher has no module 'bert\.encoder\.layers\.\d\.output'",
         replace=(("'bert.encoder.layer.{t}.output'", "'bert.encoder.layers.{t}.output'"),)),
    Case("block-name-missing-module", r"auto_distillation\.flash_distillation\.block_names: block "
         r"'bert\.encoders\.layer\.0' names no trainable parameters of the student; closest module names: ",
         replace=(("block_names: bert.encoder.layer.{i}", "block_names: bert.encoders.layer.{i}"),)),
    Case("layer-mapping-to-missing-module-distill", r"distillation\.flash_distillation\.layer_mappings_for_"
         r"knowledge_transfer: teacher has no module 'bert\.encoder\.layer\.9\.output'; closest existing "
         r"names: bert\.encoder\.layer\.1\.output",
         command="distill", replace=(("bert.encoder.layer.1.output]", "bert.encoder.layer.9.output]"),)),
    Case("student-override-the-teacher-lacks", r"BertConfig has no key 'num_hiden_layers' \(did you mean "
         r"'num_hidden_layers'", command="distill", replace=(("num_hidden_layers: 1", "num_hiden_layers: 1"),)),
    # -- where results go ------------------------------------------------------------------------
    Case("unwritable-output-dir", r"output_dir '/sys/autodistill-bad-inputs/out' is not a writable folder: "
         r"cannot create a file in '/sys' \(.+\); fix its permissions or give another output_dir",
         args=("--output-dir", "/sys/autodistill-bad-inputs/out")),  # sysfs takes no new files, even as root
    Case("unwritable-output-dir-distill", r"output_dir '/sys/autodistill-bad-inputs' is not a writable folder",
         command="distill", args=("--output-dir", "/sys/autodistill-bad-inputs")),
    Case("output-dir-under-a-file", r"output_dir '.*/a_file/out' is not a writable folder: '.*/a_file' is a "
         r"file; give another output_dir \(or --output-dir\)", args=("--output-dir", "{tmp}/a_file/out")),
    Case("output-dir-under-a-file-in-config", r"output_dir '.*/a_file/out' is not a writable folder",
         replace=(("output_dir: {out}", "output_dir: {tmp}/a_file/out"),)),
    Case("output-dir-under-a-file-distill", r"output_dir '.*/a_file/out' is not a writable folder",
         command="distill", args=("--output-dir", "{tmp}/a_file/out")),
    Case("unreachable-storage-sqlite", r"cannot open study storage 'sqlite:////proc/no/such/study\.db'.*"
         r"Check the URL", args=("--storage", "sqlite:////proc/no/such/study.db")),
    Case("unreachable-storage-postgresql", r"cannot open study storage 'postgresql\+psycopg://nobody@127\.0\.0"
         r"\.1:9/db': OperationalError: .*Check the URL",
         args=("--storage", "postgresql+psycopg://nobody@127.0.0.1:9/db")),
    Case("unknown-storage-scheme", r"cannot open study storage 'nosuchdb://x/y'",
         args=("--storage", "nosuchdb://x/y")),
    Case("study-exists-with-other-objectives", r"study 'tiny' exists with objectives \['f1'\] \['maximize'\], "
         r"not \['accuracy', 'latency'\] \['maximize', 'minimize'\]; choose another --study-name",
         # a teacher to fine-tune first: the refusal must come before that training
         replace=(("  model: {root}/teacher\n", "  model: {root}/teacher\n  fine_tune: {epochs: 1}\n"),),
         other_objectives=True),
]


def _existing_run(folder: Path, *, other_objectives: bool) -> Path:
    """An output folder as an earlier search left it: study.db with a trained trial, a student, a log."""
    out = folder / "run"
    out.mkdir()
    study = optuna.create_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}",
                                directions=["maximize"] if other_objectives else ["maximize", "minimize"])
    study.set_metric_names(["f1"] if other_objectives else ["accuracy", "latency"])
    distribution = optuna.distributions.CategoricalDistribution([8, 16])
    study.add_trial(optuna.trial.create_trial(
        params={"hidden_size": 8}, distributions={"hidden_size": distribution},
        values=[0.9] if other_objectives else [0.9, 1.5], user_attrs={"architecture": {"hidden_size": 8}}))
    student = out / "trials" / "tiny" / "00000"
    student.mkdir(parents=True)
    (student / "config.json").write_text('{"hidden_size": 8}\n')
    (out / "search.log").write_text("2026-01-01 INFO autodistill: an earlier run\n")
    (folder / "a_file").write_text("a file, not a folder\n")
    return out


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder`: relative path -> sha256 of the content ('dir' for folders)."""
    return {str(p.relative_to(folder)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def no_training(monkeypatch):
    """Records (and refuses) any training step or teacher-cache build in this process."""
    from autodistill.distill.distiller import Distiller
    from autodistill.distill.teacher_cache import TeacherCache

    calls: list[str] = []

    def refuse(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called for a bad input")
        return call

    monkeypatch.setattr(Distiller, "_run_stage", refuse("training"))
    monkeypatch.setattr(TeacherCache, "_build", refuse("teacher cache build"))
    return calls


def _fill(text: str, **values: Path) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def _write(case: Case, folder: Path, root: Path, out: Path) -> Path:
    text = case.text or (DISTILL_YAML if case.command == "distill" else SEARCH_YAML)
    for old, new in case.replace:
        assert old in text, f"{case.id}: {old!r} is not in the {case.command} config"
        text = text.replace(old, new)
    path = folder / "config.yaml"
    path.write_text(_fill(text, root=root, tmp=folder, out=out))
    return path


def _run(case: Case, config: Path, folder: Path, root: Path, capsys) -> tuple[int, str]:
    argv = [case.command, _fill(case.config, tmp=folder) if case.config else str(config), "--quiet",
            *(_fill(a, tmp=folder, root=root) for a in case.args)]
    if case.subprocess:
        exe = Path(sys.executable).parent / "autodistill"
        proc = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=300, cwd=folder,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.stdout == ""
        return proc.returncode, proc.stderr
    code = main(argv)
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def assert_refused(case: Case, tmp_path: Path, workspace: Path, capsys, no_training: list, out: Path) -> None:
    """`case` run in `tmp_path` beside the run `out`: one stderr line `autodistill: error: ...`
    matching `case.expect`, exit 2, no traceback, no file changed or added, nothing trained."""
    config = _write(case, tmp_path, workspace, out)
    before, fixtures_before = snapshot(tmp_path), snapshot(workspace)

    code, err = _run(case, config, tmp_path, workspace, capsys)

    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("autodistill: error: "), lines[0]
    assert re.search(case.expect, lines[0]), lines[0]
    assert code == 2
    assert snapshot(tmp_path) == before
    assert snapshot(workspace) == fixtures_before
    assert no_training == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, workspace, tmp_path, capsys, no_training):
    """One stderr line naming what to fix, exit 2, no traceback, no file changed, nothing trained."""
    assert_refused(case, tmp_path, workspace, capsys, no_training,
                   _existing_run(tmp_path, other_objectives=case.other_objectives))


def test_the_table_covers_every_kind_of_bad_input_the_issue_names():
    """The kinds the reliability issue lists each have at least one row."""
    ids = {c.id for c in CASES}
    for kind in ("yaml-syntax-error", "unknown-key-nearest-valid", "wrong-type", "empty-search-space",
                 "no-valid-architecture", "missing-teacher-path", "layer-mapping-to-missing-student-module",
                 "unwritable-output-dir", "unreachable-storage-sqlite", "study-exists-with-other-objectives"):
        assert kind in ids
    assert len(ids) == len(CASES) and sum(c.subprocess for c in CASES) >= 2


@pytest.mark.parametrize("command", ["search", "distill"])
def test_the_unedited_configs_train(command, workspace, tmp_path, capsys, monkeypatch):
    """The control: the configs the table edits do train and write, so the table's checks can fail."""
    from autodistill.distill.distiller import Distiller

    stages = []
    run_stage = Distiller._run_stage
    monkeypatch.setattr(Distiller, "_run_stage", lambda self, stage, *a, **k: (
        stages.append(stage.name), run_stage(self, stage, *a, **k))[1])
    out = _existing_run(tmp_path, other_objectives=False)
    config = _write(Case("good", "", command=command), tmp_path, workspace, out)
    before = snapshot(tmp_path)
    assert main([command, str(config), "--quiet"]) == 0, capsys.readouterr().err
    assert stages and snapshot(tmp_path) != before


# -- random configs: the loader returns a config or raises ConfigError, nothing else ----------

def _keys_of(model: Any, seen: set[type] | None = None) -> set[str]:
    """Every key (field name and alias) of a config model and of the sections inside it."""
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys |= {name, *([field.alias] if field.alias else [])}
        inner = _model_in(field.annotation)
        if inner is not None:
            keys |= _keys_of(inner, seen)
    return keys


VALID_KEYS = sorted(_keys_of(SearchRunConfig) | _keys_of(DistillRunConfig)
                    | {"low", "high", "step", "log", "choices", "SGD", "AdamW", "hidden_size"})
INVALID_KEYS = ["", "x", "seach", "train_step", "layer_mapping", "search_space ", "0", "None", "{i}", "é"]

scalars = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["...", "BO", "KL", "MSE", "bert.encoder.layer.{i}",
                                                     "bert.encoder.layer.{t}.output", "{x}", "1e-5", "1.0"]))
keys = st.sampled_from(VALID_KEYS) | st.sampled_from(INVALID_KEYS) | st.integers(-3, 3)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(keys, inner, max_size=5), max_leaves=15)
mappings = st.dictionaries(keys, values, max_size=8)

GOOD_SEARCH = yaml.safe_load(_fill(SEARCH_YAML, root=Path("/nonexistent"), out=Path("/nonexistent/out")))
GOOD_DISTILL = yaml.safe_load(_fill(DISTILL_YAML, root=Path("/nonexistent"), out=Path("/nonexistent/out")))


def _paths(node: Any, at: tuple = ()) -> list[tuple]:
    found = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*at, i))
    return found


@st.composite
def edited(draw, base: dict) -> dict:
    """A valid config with 1-3 random edits: a value replaced, a key added or a key removed."""
    config = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(config)))
        if not path:
            continue
        parent = config
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "add", "remove"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "add" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(keys)] = draw(values)
        elif action == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
    return config


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _load_or_config_error(text: str, folder: Path) -> None:
    """Each loader returns its config type or raises ConfigError; whatever else is raised fails."""
    path = folder / "random.yaml"
    path.write_text(text, encoding="utf-8")
    for model in (SearchRunConfig, DistillRunConfig):
        try:
            config = load_config_file(model, path)
        except ConfigError:
            continue
        assert isinstance(config, model)
        section = config.auto_distillation if model is SearchRunConfig else config.distillation
        try:  # the stages it would run, for a 2-layer student of a 4-layer teacher
            section.plan(student_layers=2, teacher_layers=4)
        except ConfigError:
            pass
    try:
        load_distillation_section(path)
    except ConfigError:
        pass


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=mappings)
def test_random_mappings_load_or_raise_config_error(data, fuzz_folder):
    """Random nested mappings of valid and invalid keys with random values, as YAML."""
    _load_or_config_error(_dump(data), fuzz_folder)


@FUZZ
@given(data=edited(GOOD_SEARCH) | edited(GOOD_DISTILL))
@example(data={**GOOD_SEARCH, "auto_distillation": {**GOOD_SEARCH["auto_distillation"], "flash_distillation": {
    **GOOD_SEARCH["auto_distillation"]["flash_distillation"], "block_names": "layer.{i}.{x}"}}})
@example(data={**GOOD_SEARCH, "auto_distillation": {**GOOD_SEARCH["auto_distillation"], "search": {
    **GOOD_SEARCH["auto_distillation"]["search"], "search_space": {"p": {"low": 0.0, "high": 1e308, "step": 1e-300}}}}})
@example(data={**GOOD_SEARCH, "auto_distillation": {**GOOD_SEARCH["auto_distillation"], "search": {
    **GOOD_SEARCH["auto_distillation"]["search"], "search_space": "x" * 300}}})
def test_edited_valid_configs_load_or_raise_config_error(data, fuzz_folder):
    """Valid search and distill configs with random values replaced, keys added or removed."""
    _load_or_config_error(_dump(data), fuzz_folder)


@FUZZ
@given(text=TEXT)
@example(text="a: [1\n")
@example(text="\x00")
@example(text="? [a, b]\n: 1\n")
@example(text="? {a: 1}\n: 1\n")
@example(text="*anchor")
@example(text="a: &x 1\nb: *y\n")
@example(text="!!python/object:os.system ls")
def test_random_text_loads_or_raises_config_error(text, fuzz_folder):
    """Random text, and a few texts no YAML parser takes, as a config file."""
    _load_or_config_error(text, fuzz_folder)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    """Bytes that are not UTF-8 (random text above is always encoded as UTF-8): the line and byte."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model: {name: x}\nteacher: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml:2: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"):
        load_config_file(SearchRunConfig, path)
