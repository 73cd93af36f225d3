"""Data loss and writes outside the output: one table per class of fault, through the real CLI.

Classes (issue 17): a user string that becomes a path (a study name, a model name, a folder name)
escapes its root or names a folder of someone else's files; `distill` writes into a model folder
it reads or into a folder of other files; a read-only command (show, report, export, dashboard)
creates a database, a folder or a schema; a study is continued with other data or another
teacher. Every row runs in a folder holding an earlier search (test_bad_inputs' harness) and
must give exit 2, exactly one stderr line `autodistill: error: ...` naming the key or the fix, no
traceback, no training, and every file byte for byte as before (nothing new, nothing removed).
The fault test runs the read-only commands on a database that cannot be written (a read-only
bind mount, or read-only permissions when not root).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch
from conftest import tiny_bert
from test_bad_inputs import DISTILL_YAML, SEARCH_YAML, _existing_run, _fill, no_training, snapshot  # noqa: F401
from transformers import BertForSequenceClassification

from autodistill.cli import main
from autodistill.config.loader import load_config_file
from autodistill.config.schema import SearchRunConfig
from autodistill.errors import ConfigError
from autodistill.paths import MAX_NAME_LENGTH, check_name, inside
from autodistill.preflight import check_distill_output
from autodistill.study.binding import binding_differences, study_binding
from autodistill.study.record import BINDING, STUDENT_PATH, TEACHER
from autodistill.study.trials import finished_count

ESCAPE = "../../../escape"  # from <tmp>/run/trials/: one level above the case's folder


@dataclass(frozen=True)
class Row:
    """`argv` after the command's config (`{config}`: the written config; `{tmp}`, `{root}` filled);
    `replace` edits the good config text; `setup` names a helper that prepares the folder."""

    id: str
    expect: str
    argv: tuple[str, ...]
    replace: tuple[tuple[str, str], ...] = ()
    setup: str | None = None
    subprocess: bool = False


def _config(folder: Path, root: Path, out: Path, *, distill: bool, replace=()) -> Path:
    text = DISTILL_YAML if distill else SEARCH_YAML
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "config.yaml"
    path.write_text(_fill(text, root=root, tmp=folder, out=out))
    return path


def _check(row: Row, folder: Path, root: Path, capsys) -> str:
    """Run `row` and assert the contract; the error line."""
    out = folder / "run"
    config = _config(folder, root, out, distill=row.argv[0] == "distill", replace=row.replace)
    argv = [_fill(a, tmp=folder, root=root, config=config) for a in row.argv]
    before, fixtures = snapshot(folder), snapshot(root)
    if row.subprocess:
        exe = Path(sys.executable).parent / "autodistill"
        proc = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=300, cwd=folder,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        code, out_text, err = proc.returncode, proc.stdout, proc.stderr
    else:
        code = main(argv)
        captured = capsys.readouterr()
        out_text, err = captured.out, captured.err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert out_text == ""
    assert len(lines) == 1, err
    assert lines[0].startswith("autodistill: error: "), lines[0]
    assert re.search(row.expect, lines[0]), lines[0]
    assert code == 2
    assert snapshot(folder) == before
    assert snapshot(root) == fixtures
    assert not (folder.parent / "escape").exists()
    return lines[0]


# -- setups: what a row's folder holds besides the earlier search ----------------------------------

def _files_under_some_dir(folder: Path, root: Path) -> None:
    mine = folder / "run" / "trials" / "some" / "dir"
    mine.mkdir(parents=True)
    (mine / "00000").mkdir()
    (mine / "00000" / "weights.bin").write_bytes(b"a user's own file")


def _empty_file(folder: Path, root: Path) -> None:
    (folder / "empty.db").touch()


def _foreign_sqlite(folder: Path, root: Path) -> None:
    with sqlite3.connect(folder / "other.db") as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('not a study')")
    db.close()


def _bound_study(folder: Path, root: Path) -> None:
    """The earlier search's study records the binding of the unedited config (as a search does)."""
    out = folder / "run"
    good = load_config_file(SearchRunConfig, _config(folder, root, out, distill=False))
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    study.set_user_attr(BINDING, study_binding(good))


def _bound_study_and_other_data(folder: Path, root: Path) -> None:
    _bound_study(folder, root)
    for name in ("train.csv", "dev.csv"):
        lines = (root / name).read_text().splitlines(keepends=True)
        (folder / name).write_text("".join(lines[:-1]))  # one example fewer


def _bound_study_and_other_teacher(folder: Path, root: Path) -> None:
    _bound_study(folder, root)
    teacher = BertForSequenceClassification.from_pretrained(root / "teacher")
    with torch.no_grad():
        teacher.classifier.bias.add_(1.0)  # same files, same sizes, other weights
    teacher.save_pretrained(folder / "teacher2")
    for path in (root / "teacher").iterdir():  # its tokenizer
        if not (folder / "teacher2" / path.name).exists():
            shutil.copy(path, folder / "teacher2")


def _earlier_students_without_a_database(folder: Path, root: Path) -> None:
    (folder / "run" / "study.db").rename(folder / "elsewhere.db")


SETUPS = {f.__name__: f for f in (_files_under_some_dir, _empty_file, _foreign_sqlite, _bound_study,
                                  _bound_study_and_other_data, _bound_study_and_other_teacher,
                                  _earlier_students_without_a_database)}

NAMES = "cannot name a folder: "
PATH_ROWS = [
    Row("study-name-escapes-the-output", rf"--study-name: '\.\./\.\./\.\./escape' {NAMES}it contains the "
        r"path separator '/'; .*give another --study-name", ("search", "{config}", "--study-name", ESCAPE),
        subprocess=True),
    Row("study-name-is-a-folder-of-user-files", rf"--study-name: 'some/dir' {NAMES}it contains the path "
        "separator", ("search", "{config}", "--study-name", "some/dir"), setup="_files_under_some_dir"),
    Row("study-name-dot-dot", rf"--study-name: '\.\.' {NAMES}'\.\.' names a folder by its place",
        ("search", "{config}", "--study-name", "..")),
    Row("study-name-empty", rf"--study-name: '' {NAMES}it is empty", ("search", "{config}", "--study-name", "")),
    Row("study-name-too-long", rf"--study-name: 'xxx+' {NAMES}it is {MAX_NAME_LENGTH + 1} characters long",
        ("search", "{config}", "--study-name", "x" * (MAX_NAME_LENGTH + 1))),
    Row("study-name-backslash", rf"--study-name: 'a\\\\b' {NAMES}it contains the path separator '\\\\'",
        ("search", "{config}", "--study-name", "a\\b")),
    Row("study-name-in-config", rf"config\.yaml:\d+:\d+: auto_distillation\.search\.study_name: {NAMES}.*"
        r"\(got '\.\./escape'\)", ("search", "{config}"),
        replace=(("    seed: 0\n", "    seed: 0\n    study_name: ../escape\n"),)),
    Row("model-name-in-config", rf"config\.yaml:1:\d+: model\.name: {NAMES}it contains the path separator",
        ("search", "{config}"), replace=(("model: {name: tiny}", "model: {name: ../../escape}"),)),
    Row("study-name-from-the-output-folder", rf"output_dir \(its folder name is the study's name\): '' "
        rf"{NAMES}it is empty; .*set auto_distillation\.search\.study_name or give --study-name",
        ("search", "{config}", "--output-dir", "/"), replace=(("model: {name: tiny}\n", ""),)),
    Row("show-with-a-study-name-that-escapes", rf"--study-name: '\.\./\.\./\.\./escape' {NAMES}",
        ("show", "{config}", "--study-name", ESCAPE)),
    Row("new-study-over-an-earlier-ones-students", r"study 'tiny' is not in storage '.*run/study\.db', but "
        r"'.*run/trials/tiny' holds students saved by an earlier study of that name.*give a new --study-name",
        ("search", "{config}"), setup="_earlier_students_without_a_database"),
    Row("search-into-a-database-that-is-not-optunas", r"storage 'sqlite:///.*other\.db' is not an Optuna study "
        r"database \(no table alembic_version", ("search", "{config}", "--storage", "sqlite:///{tmp}/other.db"),
        setup="_foreign_sqlite"),
]

DISTILL_ROWS = [
    Row("distill-into-the-teacher", r"output_dir '.*/teacher' is the teacher\.model folder '.*/teacher', which "
        r"`distill` reads: .*overwrite its config\.json and weights; give a new or empty output_dir",
        ("distill", "{config}", "--output-dir", "{root}/teacher"), subprocess=True),
    Row("distill-into-the-student-it-loads", r"output_dir '.*/00000' is the student\.model folder",
        ("distill", "{config}", "--output-dir", "{tmp}/run/trials/tiny/00000"),
        replace=(("  overrides: {hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, "
                  "intermediate_size: 32}", "  model: {tmp}/run/trials/tiny/00000"),)),
    Row("distill-into-a-folder-of-other-files", r"output_dir '.*/run' is not empty and holds no earlier "
        r"`autodistill distill` run \(no distillation\.json\).*give a new or empty output_dir \(or --output-dir\)",
        ("distill", "{config}", "--output-dir", "{tmp}/run")),
    Row("distill-into-a-folder-of-other-files-in-config", r"output_dir '.*/run' is not empty",
        ("distill", "{config}"), replace=(("output_dir: {out}-distilled", "output_dir: {out}"),)),
]

# every read-only command, on every kind of storage that is not a study database
READ_ONLY = {
    "show": ("show",),
    "report": ("report",),  # into the config's output_dir, or --output-dir with --storage
    "export": ("export", "--trial", "0", "--out", "{tmp}/exported"),
    "dashboard": ("dashboard", "--port", "18080"),
}
NOT_A_DATABASE = {
    "missing-through-the-config": ((), r"no study database at '.*nowhere/run/study\.db' \(it does not exist\); "
                                   r"run `autodistill search` first", None),
    "missing-in-a-new-folder": (("--storage", "sqlite:///{tmp}/new/dir/study.db"),
                                r"no study database at '.*new/dir/study\.db' \(it does not exist\)", None),
    "an-empty-file": (("--storage", "sqlite:///{tmp}/empty.db"),
                      r"'.*empty\.db' is an empty file, not an Optuna study database", "_empty_file"),
    "a-text-file": (("--storage", "sqlite:///{tmp}/a_file"),
                    r"'.*a_file' is not an Optuna study database \(file is not a database\)", None),
    "another-sqlite-database": (("--storage", "sqlite:///{tmp}/other.db"), r"storage 'sqlite:///.*other\.db' is "
                                r"not an Optuna study database \(no table alembic_version, studies", "_foreign_sqlite"),
}
READ_ONLY_ROWS = [
    Row(f"{command}-{kind}", expect, (*words, *(("{config}",) if not storage else storage),
                                      *(("--output-dir", "{tmp}/report") if storage and command == "report" else ())),
        setup=setup, replace=(() if storage else (("output_dir: {out}", "output_dir: {tmp}/nowhere/run"),)))
    for command, words in READ_ONLY.items() for kind, (storage, expect, setup) in NOT_A_DATABASE.items()
]

FIX = r"one study compares students of one teacher on one dataset, measured one way: give a new --study-name"
BINDING_ROWS = [
    Row("other-training-data", rf"data\.train_file: study 'tiny' was searched with other data: "
        rf"data\.train_file \(other content\), data\.validation_file \(other content\); {FIX}",
        ("search", "{config}"), setup="_bound_study_and_other_data",
        replace=(("train_file: {root}/train.csv", "train_file: {tmp}/train.csv"),
                 ("validation_file: {root}/dev.csv", "validation_file: {tmp}/dev.csv"))),
    Row("other-data-settings", rf"data\.max_length: study 'tiny' was searched with other data: "
        rf"data\.max_length \(10 here, 12 in the study\); {FIX}", ("search", "{config}"),
        setup="_bound_study", replace=(("max_length: 12", "max_length: 10"),)),
    Row("another-teacher", rf"teacher\.model: study 'tiny' was searched with another teacher: teacher\.model "
        rf"\(other content\); {FIX}", ("search", "{config}"), setup="_bound_study_and_other_teacher",
        replace=(("model: {root}/teacher", "model: {tmp}/teacher2"),), subprocess=True),
    Row("other-latency-threads", rf"auto_distillation\.evaluation\.latency\.threads: study 'tiny' was searched "
        rf"with other measurements: auto_distillation\.evaluation\.latency\.threads \(2 here, 1 in the study\); "
        rf"{FIX}", ("search", "{config}"), setup="_bound_study", replace=(("threads: 1}", "threads: 2}"),)),
    Row("another-deployment", rf"auto_distillation\.evaluation\.deployment\.quantization: study 'tiny' was "
        rf"searched with other measurements: auto_distillation\.evaluation\.deployment\.quantization "
        rf"\('dynamic_int8' here, 'none' in the study\), auto_distillation\.evaluation\.deployment\.runtime "
        rf"\('onnxruntime' here, 'torch' in the study\); {FIX}", ("search", "{config}"), setup="_bound_study",
        replace=(("    latency: {batch_size: 1, warmup: 1, repeats: 20, threads: 1}\n",
                  "    latency: {batch_size: 1, warmup: 1, repeats: 20, threads: 1}\n"
                  "    deployment: {runtime: onnxruntime, quantization: dynamic_int8}\n"),)),
    Row("a-fine-tuned-teacher", rf"teacher\.fine_tune: study 'tiny' was searched with another teacher: "
        rf"teacher\.fine_tune \(.*epochs.* here, None in the study\); {FIX}", ("search", "{config}"),
        setup="_bound_study", replace=(("  model: {root}/teacher\n", "  model: {root}/teacher\n  fine_tune: "
                                        "{epochs: 1}\n"),)),
]

TABLES = {"paths": PATH_ROWS, "distill-output": DISTILL_ROWS, "read-only": READ_ONLY_ROWS,
          "binding": BINDING_ROWS}
ROWS = [(table, row) for table, rows in TABLES.items() for row in rows]


@pytest.mark.parametrize("table, row", ROWS, ids=[f"{t}:{r.id}" for t, r in ROWS])
def test_refused_with_one_line_and_nothing_written(table, row, workspace, tmp_path, capsys, no_training):  # noqa: F811
    _existing_run(tmp_path, other_objectives=False)
    if row.setup is not None:
        SETUPS[row.setup](tmp_path, workspace)
    _check(row, tmp_path, workspace, capsys)
    assert no_training == []


def test_each_table_has_a_row_for_every_command_and_the_examples_of_the_issue():
    ids = {r.id for r in PATH_ROWS + DISTILL_ROWS + BINDING_ROWS}
    assert {"study-name-escapes-the-output", "study-name-is-a-folder-of-user-files", "distill-into-the-teacher",
            "distill-into-a-folder-of-other-files", "other-training-data", "another-teacher"} <= ids
    assert {r.id.split("-")[0] for r in READ_ONLY_ROWS} == set(READ_ONLY)
    assert sum(r.subprocess for _, r in ROWS) >= 3


# -- the helpers' rules ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tiny", "bert-tiny_2.0", "Tiny BERT", "é" * 10, "x" * MAX_NAME_LENGTH])
def test_a_folder_name_stays_one_folder_under_its_root(name, tmp_path):
    path = inside(tmp_path, "trials", check_name(name, key="k"), "00001")
    assert path.parent.parent.parent == tmp_path and path.parent.name == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/abs", "a\\b", "a\x00b", "tab\there", " x",
                                  "x" * (MAX_NAME_LENGTH + 1)])
def test_a_name_that_is_no_single_folder_is_refused_naming_the_key(name):
    with pytest.raises(ConfigError, match=r"^--study-name: .* cannot name a folder: "):
        check_name(name, key="--study-name")
    with pytest.raises(ConfigError, match="cannot name a folder"):
        inside("/tmp", "trials", name)


def test_distill_may_write_again_into_its_own_earlier_run(tmp_path):
    earlier = tmp_path / "distilled"
    earlier.mkdir()
    (earlier / "config.json").write_text("{}")
    (earlier / "distillation.json").write_text("{}")
    check_distill_output(earlier, reads={}, own_file="distillation.json")  # its own: accepted
    check_distill_output(tmp_path / "new", reads={}, own_file="distillation.json")
    (earlier / "distillation.json").unlink()
    with pytest.raises(ConfigError, match="is not empty"):
        check_distill_output(earlier, reads={}, own_file="distillation.json")


def test_more_latency_repeats_or_warm_up_is_the_same_binding(workspace, tmp_path):
    """Warm-up and repeats change only a benchmark's noise: a study continues with other ones."""
    out = tmp_path / "run"
    first = load_config_file(SearchRunConfig, _config(tmp_path, workspace, out, distill=False))
    second = load_config_file(SearchRunConfig, _config(tmp_path, workspace, out, distill=False, replace=(
        ("warmup: 1, repeats: 20", "warmup: 3, repeats: 50"),)))
    assert second.auto_distillation.evaluation.latency.repeats == 50
    assert study_binding(first) == study_binding(second)


def test_a_moved_copy_of_the_data_and_teacher_is_the_same_binding(workspace, tmp_path):
    """Bound by content, not by path: copies elsewhere give the same fingerprints."""
    out = tmp_path / "run"
    first = load_config_file(SearchRunConfig, _config(tmp_path, workspace, out, distill=False))
    copy = tmp_path / "copy"
    shutil.copytree(workspace, copy)
    second = load_config_file(SearchRunConfig, _config(tmp_path, copy, out, distill=False))
    assert first.teacher.model != second.teacher.model
    assert binding_differences(study_binding(first), study_binding(second)) == []
    (copy / "dev.csv").write_text("text,label\ngood film,pos\n")
    assert binding_differences(study_binding(first), study_binding(second)) == ["data.validation_file (other content)"]


def test_a_save_never_deletes_a_folder_it_did_not_write(tmp_path):
    """A trial whose student folder exists already (not its own) fails and leaves that folder."""
    from autodistill.config.schema import SearchSection
    from autodistill.study.record import FAILURE_REASON
    from autodistill.study.search import AutoDistillation

    foreign = tmp_path / "trials" / "x" / "00000"
    foreign.mkdir(parents=True)
    (foreign / "mine.txt").write_text("keep me")
    section = SearchSection(search_space={"hidden_size": [8]}, search_algorithm="random", max_trials=1,
                            metrics=["accuracy"], higher_is_better=[True], seed=0, max_consecutive_failures=1)
    agent = AutoDistillation(lambda a: tiny_bert(hidden=a["hidden_size"], layers=1, heads=2), section,
                             train_func=lambda m: m, eval_func=lambda m: {"accuracy": 0.5},
                             storage_url=f"sqlite:///{tmp_path / 's.db'}", study_name="x", output_dir=tmp_path,
                             progress=False)
    with pytest.raises(Exception, match="failed"):
        agent.search_loop()
    assert "exists and was not written by this trial" in agent.study.trials[0].user_attrs[FAILURE_REASON]
    assert (foreign / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in foreign.parent.iterdir()) == ["00000"]  # no temporary left behind


def test_the_same_data_and_teacher_continue_a_bound_study(workspace, tmp_path, capsys):
    """The control: a study bound to the unedited config's data and teacher trains on, and keeps its
    binding; nothing outside the run's output folder changes."""
    _existing_run(tmp_path, other_objectives=False)
    _bound_study(tmp_path, workspace)
    config = _config(tmp_path, workspace, tmp_path / "run", distill=False)
    outside = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("run")}
    fixtures = snapshot(workspace)
    assert main(["search", str(config), "--quiet"]) == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    good = load_config_file(SearchRunConfig, config)
    assert study.user_attrs[BINDING] == study_binding(good) and finished_count(study) == 2
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("run")} == outside
    assert snapshot(workspace) == fixtures


# -- fault: a database that cannot be written ---------------------------------------------------------

def _finished_study(folder: Path, root: Path) -> Path:
    """A finished study with one saved, loadable student (and the teacher's figures)."""
    out = folder / "run"
    student = out / "trials" / "tiny" / "00000"
    tiny_bert(hidden=16, layers=1, heads=2).save_pretrained(student)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(root / "teacher" / name, student)
    study = optuna.create_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}",
                                directions=["maximize", "minimize"])
    study.set_metric_names(["accuracy", "latency"])
    study.set_user_attr(TEACHER, {"accuracy": 0.9, "latency_p50_ms": 4.0, "params": 1000, "size_mb": 1.0})
    distribution = optuna.distributions.CategoricalDistribution([8, 16])
    study.add_trial(optuna.trial.create_trial(
        params={"hidden_size": 16}, distributions={"hidden_size": distribution}, values=[0.85, 1.0],
        user_attrs={"architecture": {"hidden_size": 16}, "accuracy": 0.85, "latency_p50_ms": 1.0,
                    STUDENT_PATH: str(student)}))
    return out


def _read_only_prefix(folder: Path) -> list[str]:
    """A command prefix under which `folder` takes no writes: a private read-only bind mount for
    root (whom permissions do not stop), read-only permissions otherwise."""
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return []
    if shutil.which("unshare") is None:
        pytest.skip("root without unshare(1): no way to make a folder read-only")
    prefix = ["unshare", "--mount", "sh", "-c", f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"', "sh"]
    probe = subprocess.run([*prefix, "test", "!", "-w", str(folder)], capture_output=True, text=True)
    if probe.returncode != 0:  # the mount failed, or left the folder writable
        pytest.skip(f"a read-only bind mount is not possible here: {probe.stderr.strip()}")
    return prefix


def test_read_only_commands_work_on_a_read_only_database_and_search_refuses_it(workspace, tmp_path):
    out = _finished_study(tmp_path, workspace)
    url = f"sqlite:///{out / 'study.db'}"
    database = (out / "study.db").read_bytes()
    before = snapshot(out)
    prefix = _read_only_prefix(out)
    exe = str(Path(sys.executable).parent / "autodistill")
    config = _config(tmp_path, workspace, tmp_path / "elsewhere", distill=False)

    def run(*words: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, exe, *words], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"})

    try:
        shown = run("show", "--storage", url)
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
        assert "teacher" in shown.stdout and "0.85" in shown.stdout
        exported = run("export", "--trial", "0", "--out", str(tmp_path / "exported"), "--storage", url)
        assert exported.returncode == 0, exported.stderr
        assert (tmp_path / "exported" / "config.json").is_file() and (tmp_path / "exported" / "README.md").is_file()
        reported = run("report", "--storage", url, "--output-dir", str(tmp_path / "report"))
        assert reported.returncode == 0, reported.stderr
        assert (tmp_path / "report" / "report.md").is_file()
        searched = run("search", str(config), "--quiet", "--storage", url)
        lines = [line for line in searched.stderr.splitlines() if line.strip()]
        assert searched.returncode == 2 and len(lines) == 1 and "Traceback" not in searched.stderr, searched.stderr
        assert re.search(r"^autodistill: error: --storage: the study database '.*study\.db' is read-only "
                         r"\(its (file|folder) .*\); .*give that --storage", lines[0]), lines[0]
        assert not (tmp_path / "elsewhere").exists()  # refused before its output folder was made
    finally:
        for path in [out, *out.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert (out / "study.db").read_bytes() == database and snapshot(out) == before
