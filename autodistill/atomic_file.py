"""Files written whole or not at all: written under a temporary name of their own, then renamed.

    write_atomically(path, lambda tmp: tmp.write_text(text))

The temporary name carries the process and thread, so workers sharing an output folder can
write the same file at once (the last rename wins, each reader sees one whole version); a
write that fails leaves neither a partial file nor its temporary behind.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(temporary path)`, then rename the temporary onto `path`; `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
