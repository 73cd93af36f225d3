"""Files written whole or not at all: written under a temporary name of their own, then renamed.

    write_atomically(path, lambda tmp: tmp.write_text(text))

The temporary name (`temporary_path`) carries the host (with its process-id namespace), the
process and the thread, so workers sharing an output folder can write the same file at once (the
last rename wins, each reader sees one whole version); a write that fails leaves neither a
partial file nor its temporary behind. A process killed with -9 cannot clean up:
`remove_dead_temporaries` deletes the temporaries of processes that no longer run on this host,
and every writer of temporaries (this one, the teacher cache, the teacher's fine-tune, export,
the search's students) calls it on the folder before it writes.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# `.<name>.<host>~<pid>.<thread>.tmp`, optionally followed by one extension (`.npy`)
_TEMPORARY = re.compile(r"^\..+\.(?P<host>[^.~/]+)~(?P<pid>\d+)\.\d+\.tmp(\.\w+)?$")


def _host() -> str:
    """This host's name, with the process-id namespace where there is one: containers that share
    a host name (and a folder) but not their process ids never take each other's pids for dead."""
    try:
        namespace = f"-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        namespace = ""
    return re.sub(r"[.~/]", "-", socket.gethostname() + namespace) or "localhost"


def temporary_path(path: str | Path, *, suffix: str = "") -> Path:
    """A hidden name next to `path` that is this host's, process's and thread's own."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_host()}~{os.getpid()}.{threading.get_ident()}.tmp{suffix}")


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (another user's process counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries (files or folders) in `folder` whose process no longer runs on this
    host; those of other hosts and of live processes are kept. The deleted paths."""
    folder = Path(folder)
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(".")]
    except OSError:  # no folder yet, or not readable: nothing of ours to clean
        return []
    host, removed = _host(), []
    for path in entries:
        found = _TEMPORARY.match(path.name)
        if found is None or found["host"] != host:
            continue
        pid = int(found["pid"])
        if pid == os.getpid() or process_alive(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        log.info("removed %s, left by process %d, which was killed", path, pid)
        removed.append(path)
    return removed


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(temporary path)`, then rename the temporary onto `path`; `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(path.parent)
    tmp = temporary_path(path)
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_folder_atomically(final: str | Path, write: Callable[[Path], object], *, replace: bool = False) -> Path:
    """Call `write(temporary folder)` (new and empty, this process's and thread's own, next to
    `final`), then rename it onto `final`; `final`. A failed or interrupted write leaves neither
    the folder nor its temporary; `replace` removes an existing `final` first (a half-written or
    empty one: the caller decides it may go), else renaming onto an existing one fails."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(final.parent)  # the half-written folders of killed processes
    tmp = temporary_path(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        if replace:
            shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
