"""Files written whole or not at all, also when several writers share the path."""

from __future__ import annotations

import threading

import pytest

from autodistill.atomic_file import write_atomically


def test_writers_of_one_path_at_once_all_succeed_and_leave_one_whole_version(tmp_path):
    path = tmp_path / "out" / "report.md"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(i: int) -> None:
        start.wait()
        try:
            for _ in range(20):
                write_atomically(path, lambda tmp: tmp.write_text(f"writer {i}\n" * 500))
        except BaseException as exc:  # a shared temporary name makes one writer's rename fail
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    lines = path.read_text().splitlines()
    assert len(lines) == 500 and len(set(lines)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["report.md"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "pareto.json"
    path.write_text("old")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["pareto.json"]
