"""A private PostgreSQL server for the multi-worker tests and scripts/bench_resume.py.

    with PostgresServer.start() as server:        # PostgresUnavailable if it cannot
        url = server.create_database("study")      # postgresql+psycopg://postgres@127.0.0.1:PORT/study

It runs Debian's binaries (/usr/lib/postgresql/<version>/bin) on a free port of 127.0.0.1
from a temporary data folder, as user `postgres` when this process is root (initdb refuses
root), with trust authentication; stopping it removes the folder. Nothing is installed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (the reason says why)."""


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not found:
        raise PostgresUnavailable("no PostgreSQL binaries in /usr/lib/postgresql/*/bin "
                                  "(apt-get install postgresql)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, bin_dir: Path, data: Path, port: int, run_as: list[str]) -> None:
        self.bin_dir, self.data, self.port, self._run_as = bin_dir, data, port, run_as

    @classmethod
    def start(cls) -> PostgresServer:
        bin_dir = _binaries()
        run_as: list[str] = []
        data = Path(tempfile.mkdtemp(prefix="autodistill-pg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(data, ignore_errors=True)
                raise PostgresUnavailable("running as root and there is no user 'postgres' for initdb") from None
            os.chown(data, user.pw_uid, user.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        server = cls(bin_dir, data, _free_port(), run_as)
        try:
            server._run("initdb", "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "--no-sync")
            server._run("pg_ctl", "-D", str(data / "db"), "-l", str(data / "server.log"), "-w", "-t", "60",
                        "-o", f"-c listen_addresses=127.0.0.1 -p {server.port} -k {data} -c fsync=off "
                              "-c max_connections=200", "start")
        except PostgresUnavailable:
            server.stop()
            raise
        return server

    def _run(self, tool: str, *args: str) -> None:
        try:
            result = subprocess.run([*self._run_as, str(self.bin_dir / tool), *args], capture_output=True,
                                    text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{tool}: {exc}") from None
        if result.returncode != 0:
            log = self.data / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"{tool} failed ({result.returncode}): {result.stderr.strip()[-2000:]} {tail}")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database on this server; its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "db" / "postmaster.pid").exists():
            subprocess.run([*self._run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data / "db"),
                            "-m", "immediate", "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(self.data, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
