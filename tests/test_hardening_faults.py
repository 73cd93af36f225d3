"""Hardening: every command ends with one line and no traceback; faults leave nothing behind.

`test_bad_input_class` is one table through the real command line (the harness of
test_bad_inputs.py: a folder holding a study with a trained trial, a student and a log), one
row per class of bad input the hardening issue names: each gives exit 2, exactly one stderr line
`autodistill: error: ...` naming the key or file and line and the fix, no traceback, no file
changed. An unexpected exception is one `autodistill: internal error: ...` line with exit 1 and
the full trace in the log file it names.

The fault tests kill a teacher-cache build and an export with -9 and check that the next run
removes what they left (their pid is in the names), fill a small tmpfs during a cache build
(root only: mounting needs it) and fail at once a trial whose worker is a dead process of this
host.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch
from conftest import tiny_bert
from test_bad_inputs import (  # noqa: F401
    DISTILL_YAML,
    SEARCH_YAML,
    _existing_run,
    _fill,
    no_training,
    snapshot,
)
from transformers import AutoTokenizer

from autodistill.atomic_file import temporary_path
from autodistill.cli import main
from autodistill.data import TokenizedDataset, read_text_file
from autodistill.data.text_files import MAX_TEXT_CHARACTERS
from autodistill.distill.teacher_cache import LOGITS, TeacherCache
from autodistill.errors import ConfigError, DiskSpaceError
from autodistill.study import lost_trials
from autodistill.study import record as attrs

BOMB = "".join(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
               for prev, name in zip("abcdefgh", "bcdefghi"))
BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + BOMB  # 9**9 values


@dataclass(frozen=True)
class Row:
    """One class of bad input: `argv` ({config}, {tmp}, {out}, {root}, {port} filled in), the
    edits of the search (or distill) config, and the pattern its one stderr line must match."""

    id: str
    argv: tuple[str, ...]
    expect: str
    replace: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    distill: bool = False
    subprocess: bool = False


ROWS = [
    Row("yaml-alias-bomb", ("search", "{config}"), r"config\.yaml:\d+:\d+: \w: aliases expand this value to "
        r"more than 100,000 values; write out what you mean to repeat", text=BOMB, subprocess=True),
    Row("yaml-duplicate-key", ("search", "{config}"), r"config\.yaml:8:3: data\.max_length: duplicate key "
        r"\(first at line 7\); keep one of them",
        replace=(("  max_length: 12\n", "  max_length: 12\n  max_length: 16\n"),)),
    Row("max-length-beyond-the-teacher", ("distill", "{config}"), r"data\.max_length is 1000000000 but "
        r".*max_position_embeddings is 32.*set data\.max_length to 32 or less",
        replace=(("max_length: 12", "max_length: 1000000000"),), distill=True, subprocess=True),
    Row("text-too-long-json-lines", ("search", "{config}"), r"long\.jsonl, line 2, column 'text': the text has "
        r"1,000,001 characters, more than the 1,000,000 one text may hold; .*shorten it",
        replace=(("train_file: {root}/train.csv", "train_file: {tmp}/long.jsonl"),)),
    Row("text-too-long-csv", ("distill", "{config}"), r"long\.csv, line 3: a field is longer than 1,000,000 "
        r"characters, the most one text may hold; .*shorten it",
        replace=(("train_file: {root}/train.csv", "train_file: {tmp}/long.csv"),), distill=True),
    Row("classes-differ-from-the-teachers", ("search", "{config}"), r"data\.train_file: the data has 3 classes "
        r"\['mid', 'neg', 'pos'\] but teacher '.*/teacher' was saved with 2 \(num_labels in its config\.json\); "
        r"give data with the teacher's classes, or fine-tune it",
        replace=(("train_file: {root}/train.csv", "train_file: {tmp}/three.csv"),)),
    Row("classes-differ-from-the-teachers-distill", ("distill", "{config}"), r"data\.train_file: the data has "
        r"3 classes .* was saved with 2", distill=True,
        replace=(("train_file: {root}/train.csv", "train_file: {tmp}/three.csv"),)),
    Row("hidden-size-not-divisible-by-heads-distill", ("distill", "{config}"), r"hidden_size 16 is not "
        r"divisible by num_attention_heads 3", replace=(("num_attention_heads: 2", "num_attention_heads: 3"),),
        distill=True),
    Row("zero-heads-distill", ("distill", "{config}"), r"student\.overrides\.num_attention_heads: .*must be >= 1, "
        r"got 0", replace=(("num_attention_heads: 2", "num_attention_heads: 0"),), distill=True),
    Row("abbreviated-option", ("search", "{config}", "--max", "3"), r"unrecognized arguments: --max 3"),
    Row("export-out-under-a-file", ("export", "--output-dir", "{out}", "--trial", "1", "--out",
                                    "{tmp}/a_file/student"),
        r"--out '.*/a_file/student' is not a writable folder: '.*/a_file' is a file; give another --out$"),
    Row("export-out-unwritable", ("export", "--output-dir", "{out}", "--trial", "1", "--out",
                                  "/sys/autodistill-hardening/student"),
        r"--out '/sys/autodistill-hardening/student' is not a writable folder: cannot create a file in '/sys' "
        r"\(.+\); fix its permissions or give another --out$"),
    Row("dashboard-port-out-of-range", ("dashboard", "--output-dir", "{out}", "--port", "70000"),
        r"argument --port: a port is a number from 1 to 65535, got '70000'"),
    Row("dashboard-port-in-use", ("dashboard", "--output-dir", "{out}", "--port", "{port}"),
        r"dashboard cannot listen on --host 127\.0\.0\.1 --port \d+: Address already in use; give a free "
        r"--port", subprocess=True),
    Row("dashboard-bad-host", ("dashboard", "--output-dir", "{out}", "--host", "no-such-host.invalid"),
        r"dashboard cannot listen on --host no-such-host\.invalid --port 8080: .*give a free --port \(or a "
        r"--host of this machine"),
]


def _long_texts(folder: Path) -> None:
    """long.jsonl and long.csv, each with one text a character too long (on their line 2, 3)."""
    text = "good " * (MAX_TEXT_CHARACTERS // 5) + "x"
    (folder / "long.jsonl").write_text(f'{{"text": "good film", "label": "pos"}}\n'
                                       f'{{"text": "{text}", "label": "neg"}}\n')
    (folder / "long.csv").write_text(f'text,label\ngood film,pos\n"{text}",neg\n')


def _three_classes(folder: Path, workspace: Path) -> None:
    """three.csv: the workspace's training texts with a third class."""
    lines = (workspace / "train.csv").read_text().splitlines()
    (folder / "three.csv").write_text("\n".join([lines[0], "good film,mid", *lines[1:]]) + "\n")


def _with_student(out: Path) -> None:
    """Trial 1 of the existing study: completed, with the saved student an export copies."""
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    distribution = optuna.distributions.CategoricalDistribution([8, 16])
    study.add_trial(optuna.trial.create_trial(
        params={"hidden_size": 8}, distributions={"hidden_size": distribution}, values=[0.9, 1.5],
        user_attrs={"architecture": {"hidden_size": 8},
                    attrs.STUDENT_PATH: str(out / "trials" / "tiny" / "00000")}))


@pytest.fixture
def busy_port():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def _cli(argv: list[str], *, in_subprocess: bool, cwd: Path, capsys) -> tuple[int, str]:
    if in_subprocess:
        exe = Path(sys.executable).parent / "autodistill"
        proc = subprocess.run([str(exe), *argv], check=False, capture_output=True, text=True, timeout=300, cwd=cwd,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.stdout == ""
        return proc.returncode, proc.stderr
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refused the arguments
        code = exc.code
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and "panicked" not in err, err
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_class(row, workspace, tmp_path, capsys, busy_port, no_training):  # noqa: F811
    """One stderr line naming what to fix, exit 2, no traceback, no file changed, nothing trained."""
    out = _existing_run(tmp_path, other_objectives=False)
    _with_student(out)
    _long_texts(tmp_path)
    _three_classes(tmp_path, workspace)
    text = row.text or (DISTILL_YAML if row.distill else SEARCH_YAML)
    for old, new in row.replace:
        assert old in text, f"{row.id}: {old!r} is not in the config"
        text = text.replace(old, new)
    config = tmp_path / "config.yaml"
    config.write_text(_fill(text, root=workspace, tmp=tmp_path, out=out))
    argv = [a.replace("{config}", str(config)).replace("{port}", str(busy_port)) for a in row.argv]
    argv = [_fill(a, tmp=tmp_path, out=out, root=workspace) for a in argv]
    before, fixtures_before = snapshot(tmp_path), snapshot(workspace)

    code, err = _cli(argv, in_subprocess=row.subprocess, cwd=tmp_path, capsys=capsys)

    line = _one_line(err)
    assert line.startswith("autodistill: error: ") and re.search(row.expect, line), line
    assert code == 2
    assert snapshot(tmp_path) == before
    assert snapshot(workspace) == fixtures_before
    assert no_training == []


def test_an_unexpected_exception_is_one_line_with_the_trace_in_the_runs_log(workspace, tmp_path, capsys,
                                                                            monkeypatch):
    out = _existing_run(tmp_path, other_objectives=False)
    monkeypatch.setattr("autodistill.study.pareto.front_rows", _fails)

    code, err = _cli(["show", "--output-dir", str(out)], in_subprocess=False, cwd=tmp_path, capsys=capsys)

    line = _one_line(err)
    log_file = out / "autodistill.log"
    assert code == 1
    assert line == f"autodistill: internal error: RuntimeError: a bug in autodistill (full trace in {log_file})"
    trace = log_file.read_text()
    assert "Traceback (most recent call last)" in trace and "autodistill show --output-dir" in trace
    assert "in _fails" in trace


def test_without_an_output_folder_the_trace_goes_to_a_named_temporary_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("autodistill.study.storage.load_existing_study", _fails)

    code, err = _cli(["show", "--storage", f"sqlite:///{tmp_path / 'none.db'}"], in_subprocess=False,
                     cwd=tmp_path, capsys=capsys)

    found = re.fullmatch(r"autodistill: internal error: RuntimeError: a bug in autodistill \(full trace in "
                         r"(/.+\.log)\)", _one_line(err))
    assert code == 1 and found, err
    log_file = Path(found[1])
    try:
        assert log_file.parent == Path(tempfile.gettempdir()) / "autodistill"
        assert "in _fails" in log_file.read_text()
    finally:
        log_file.unlink(missing_ok=True)
    assert list(tmp_path.iterdir()) == []


def _fails(*args, **kwargs):
    raise RuntimeError("a bug in autodistill")


def test_a_read_only_study_database_during_a_search_is_one_line(workspace, tmp_path, capsys, monkeypatch):
    """The storage refuses a write (a disk that turned read-only): the cause and its fix, exit 2,
    not Optuna's StorageInternalError, which hides it."""
    import sqlite3

    import sqlalchemy.exc

    def refused(*args, **kwargs):
        raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from \
            sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError(
                "attempt to write a readonly database"))

    out = tmp_path / "run"
    config = tmp_path / "config.yaml"
    config.write_text(_fill(SEARCH_YAML, root=workspace, out=out))
    monkeypatch.setattr("autodistill.study.search.AutoDistillation.search_loop", refused)

    code, err = _cli(["search", str(config), "--quiet"], in_subprocess=False, cwd=tmp_path, capsys=capsys)

    assert code == 2
    assert _one_line(err) == (
        "autodistill: error: the study storage refused a write (attempt to write a readonly database): make "
        "the study database and its folder writable; then run the same command again (finished trials are "
        "kept)")


# -- faults -------------------------------------------------------------------------------------

@pytest.fixture
def dataset(workspace):
    tokenizer = AutoTokenizer.from_pretrained(workspace / "teacher")
    return TokenizedDataset(read_text_file(workspace / "train.csv"), tokenizer, max_length=12)


FEATURES = [("bert.encoder.layer.1.output", ()), LOGITS]

SLOW_BUILD = """\
import sys, time
sys.path.insert(0, {tests!r})
import torch
from transformers import AutoTokenizer
from autodistill.data import TokenizedDataset, read_text_file
from autodistill.distill.teacher_cache import LOGITS, TeacherCache
from conftest import tiny_bert

class Slow(TokenizedDataset):
    def __getitem__(self, index):
        if index >= 8:  # after the first batch (its files are allocated): slow enough to be killed
            time.sleep(0.5)
        return super().__getitem__(index)

dataset = Slow(read_text_file({train!r}), AutoTokenizer.from_pretrained({teacher!r}), max_length=12)
TeacherCache(tiny_bert(hidden=32, layers=2, heads=4, labels=2, seed=0).eval(), dataset, root={root!r},
             batch_size=8).ensure([("bert.encoder.layer.1.output", ()), LOGITS])
"""


def _wait_for(predicate, proc: subprocess.Popen, what: str):
    for _ in range(600):
        found = predicate()
        if found:
            return found
        assert proc.poll() is None, f"the process ended before {what}: {proc.stderr.read()}"
        time.sleep(0.1)
    pytest.fail(f"no {what} within 60 s")


def _kill(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def test_a_cache_build_killed_with_minus_9_leaves_temporaries_the_next_build_removes(workspace, dataset,
                                                                                     tmp_path):
    root = tmp_path / "cache"
    script = SLOW_BUILD.format(tests=str(Path(__file__).parent), train=str(workspace / "train.csv"),
                               teacher=str(workspace / "teacher"), root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        def both():
            found = sorted(root.glob(f"*/.*~{proc.pid}.*.tmp.npy"))
            return found if len(found) == len(FEATURES) else None

        left = _wait_for(both, proc, "the build's temporary files")
    finally:
        _kill(proc)
    assert all(p.exists() for p in left)  # what the kill leaves

    cache = TeacherCache(tiny_bert(hidden=32, layers=2, heads=4, labels=2, seed=0).eval(), dataset, root=root)
    cache.ensure(FEATURES)

    assert cache.directory == left[0].parent
    assert not any(p.exists() for p in left)
    assert sorted(p.suffix for p in cache.directory.iterdir()) == [".json", ".json", ".npy", ".npy"]
    assert cache.built == FEATURES


SLOW_EXPORT = """\
import time
import optuna
from autodistill.export import student
from autodistill.export import export_student

def slow(folder, teacher_model):  # after the copy into the temporary folder
    time.sleep(60)

student._add_tokenizer = slow
study = optuna.load_study(study_name="tiny", storage={storage!r})
export_student(study, study.trials[1], {out!r}, selected_by="--trial 1")
"""


def test_an_export_killed_with_minus_9_leaves_a_copy_the_next_export_removes(workspace, tmp_path, capsys):
    run = _existing_run(tmp_path, other_objectives=False)
    _with_student(run)
    target = tmp_path / "exports" / "student"
    script = SLOW_EXPORT.format(storage=f"sqlite:///{run / 'study.db'}", out=str(target))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        left = _wait_for(lambda: [p for p in target.parent.glob(f".student.*~{proc.pid}.*.tmp")
                                  if (p / "config.json").exists()], proc, "the export's temporary copy")
    finally:
        _kill(proc)
    assert left[0].is_dir()

    assert main(["export", "--output-dir", str(run), "--trial", "1", "--out", str(target)]) == 0, \
        capsys.readouterr().err

    assert sorted(p.name for p in target.parent.iterdir()) == ["student"]
    assert (target / "config.json").exists() and (target / "README.md").exists()


def _small_disk(folder: Path, size: str) -> Path:
    folder.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True,
                       capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"a small tmpfs cannot be mounted here ({exc}); the disk-full test needs root")
    return folder


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_cache_build_on_a_full_disk_is_one_error_and_the_rerun_builds(dataset, tmp_path, monkeypatch):
    disk = _small_disk(tmp_path / "disk", "256k")
    try:
        teacher = tiny_bert(hidden=32, layers=2, heads=4, labels=2, seed=0).eval()
        filler = disk / "filler"
        filler.write_bytes(b"x" * (256 * 1024 - 64 * 1024))  # 64 KiB left; the cache needs about 54
        with open(disk / "filler2", "wb") as more:  # and 40 KiB of those taken too
            more.write(b"x" * 40 * 1024)

        with pytest.raises(DiskSpaceError, match=r"teacher cache: its files need \d+ KiB in .*, but the "
                           r"disk has \d+ KiB free; free space there .*auto_distillation\.teacher_cache"):
            TeacherCache(teacher, dataset, root=disk / "cache").ensure(FEATURES)
        assert [p.name for p in (disk / "cache").rglob("*") if p.is_file()] == []

        # the free-space check passed (another process filled the disk meanwhile): the allocation
        # fails with ENOSPC, one error, not SIGBUS in the middle of the memory-mapped writes
        monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(2**40, 0, 2**40))
        with pytest.raises(DiskSpaceError, match=r"teacher cache: its files need"):
            TeacherCache(teacher, dataset, root=disk / "cache").ensure(FEATURES)
        assert [p.name for p in (disk / "cache").rglob("*") if p.is_file()] == []
        monkeypatch.undo()

        (disk / "filler2").unlink()
        rerun = TeacherCache(teacher, dataset, root=disk / "cache")
        rerun.ensure(FEATURES)
        assert rerun.built == FEATURES
        live = teacher(**{k: v for k, v in dataset.tensors.items() if k != "labels"}).logits
        cached = rerun.lookup(torch.arange(len(dataset)), [LOGITS], torch.device("cpu")).output["logits"]
        torch.testing.assert_close(cached, live.detach())
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False, timeout=30)  # open maps: detach now


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_search_on_a_full_disk_ends_with_one_line_and_the_rerun_finishes(workspace, tmp_path, capsys):
    """The search's output folder on a 200 KiB disk: the study fits, the teacher cache does not.
    One line, exit 2, at the first trial (not one failed trial after another); with the disk
    grown, the same command finishes the study."""
    disk = _small_disk(tmp_path / "disk", "200k")
    try:
        config = tmp_path / "config.yaml"
        config.write_text(_fill(SEARCH_YAML, root=workspace, out=disk / "run"))
        command = ["search", str(config), "--quiet"]

        code, err = _cli(command, in_subprocess=True, cwd=tmp_path, capsys=capsys)

        assert code == 2
        assert re.fullmatch(r"autodistill: error: teacher cache: its files need \d+ KiB in .*/run/teacher_cache/"
                            r"\w+, but the disk has \d+ KiB free; free space there .*and run again", _one_line(err))
        subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True, timeout=30)
        proc = subprocess.run([str(Path(sys.executable).parent / "autodistill"), *command], check=False,
                              capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 0, proc.stderr
        study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{disk / 'run' / 'study.db'}")
        assert sum(t.state.name == "COMPLETE" for t in study.trials) == 2
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False, timeout=30)  # open maps: detach now


def test_a_trial_whose_worker_is_a_dead_process_of_this_host_is_failed_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = socket.gethostname()
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", directions=["maximize"])
    workers = {"dead here": f"{here}:{dead.pid}", "alive here": f"{here}:{os.getppid()}",
               "elsewhere": f"another-host:{dead.pid}"}
    numbers = {}
    for name, worker in workers.items():
        trial = study.ask({"hidden_size": optuna.distributions.CategoricalDistribution([8, 16])})
        trial.set_user_attr(attrs.ARCHITECTURE_KEY, name)
        trial.set_user_attr(attrs.WORKER, worker)
        numbers[name] = trial.number

    lost_trials.fail_lost_trials(study, grace_seconds=120, max_retries=3)

    states = {name: study.trials[n].state.name for name, n in numbers.items()}
    assert states == {"dead here": "FAIL", "alive here": "RUNNING", "elsewhere": "RUNNING"}
    queued = [t for t in study.trials if t.state.name == "WAITING"]
    assert [t.user_attrs[attrs.RETRY_OF] for t in queued] == [numbers["dead here"]]


def test_temporary_names_carry_host_and_pid(tmp_path):
    name = temporary_path(tmp_path / "report.md").name
    assert re.fullmatch(rf"\.report\.md\.[^.~]+-\d+~{os.getpid()}\.\d+\.tmp", name)  # host-pidns~pid.thread


def test_a_max_length_no_model_has_is_refused_before_the_tokenizer_runs(workspace):
    """A tokenizer without a model_max_length (the workspace's) would abort in Rust padding to 10**9."""
    tokenizer = AutoTokenizer.from_pretrained(workspace / "teacher")
    with pytest.raises(ConfigError, match=r"data\.max_length must be at most 65,536 tokens .*got 1,000,000,000; "
                       r"lower it"):
        TokenizedDataset(read_text_file(workspace / "train.csv"), tokenizer, max_length=10**9)


def test_aliases_and_merge_keys_that_reuse_a_part_of_the_file_are_read(tmp_path):
    """The documented use: an anchor reused, a `<<` merge key overridden (not a duplicate)."""
    from autodistill.config.loader import read_yaml

    path = tmp_path / "reuse.yaml"
    path.write_text("base: &base {max_length: 12, batch_size: 16}\nsizes: &sizes [8, 16]\n"
                    "data:\n  <<: *base\n  batch_size: 32\nspace: {hidden_size: *sizes}\n")
    data, lines = read_yaml(path)
    assert data["data"] == {"max_length": 12, "batch_size": 32} and data["space"]["hidden_size"] == [8, 16]
    assert lines[("data", "batch_size")] == (5, 3)


def test_an_alias_inside_its_own_node_is_refused(tmp_path):
    from autodistill.config.loader import read_yaml

    path = tmp_path / "loop.yaml"
    path.write_text("a: &x [1, *x]\n")
    with pytest.raises(ConfigError, match=r"loop\.yaml:1:4: a\.1: an alias refers to the node that holds it"):
        read_yaml(path)
