"""A throwaway Postgres cluster from Debian's binaries on a free loopback port.

pytest-postgresql's ``PostgreSQLExecutor`` runs it (initdb, start, stop). Postgres
refuses to run as root, so as root every ``pg_ctl`` call goes through a small wrapper
that runs it as the ``postgres`` user, on a data folder that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

import psycopg
from pytest_postgresql.executors.proc import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor


def pg_ctl() -> str | None:
    """Debian's ``pg_ctl`` (the newest installed), or ``None``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major)
    return found[-1] if found else shutil.which("pg_ctl")


def _major(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A running cluster; ``database()`` makes a fresh database and drops it after."""

    def __init__(self, executor: PostgreSQLExecutor) -> None:
        self.executor = executor
        self._names = count()

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh, empty database's URL, dropped when the block ends."""
        name = f"corral_{os.getpid()}_{next(self._names)}"
        janitor = DatabaseJanitor(
            user=self.executor.user,
            host=self.executor.host,
            port=self.executor.port,
            dbname=name,
        )
        janitor.init()
        try:
            yield self.url(name)
        finally:
            janitor.drop()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the server accepts connections (``pg_ctl start`` may return before)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=5).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.executor.port}/{dbname}"


@contextmanager
def cluster() -> Iterator[Cluster]:
    """Start a cluster (initdb on a fresh folder) and stop it and delete it after."""
    executable = pg_ctl()
    if executable is None:
        raise RuntimeError(
            "PostgreSQL is not installed: `apt-get install -y postgresql` (.ci/run does)"
        )
    base = Path(tempfile.mkdtemp(prefix="corral-pg-"))
    try:
        if os.geteuid() == 0:  # postgres will not run as root: run pg_ctl as postgres
            user = pwd.getpwnam("postgres")
            os.chown(base, user.pw_uid, user.pw_gid)
            wrapper = base / "pg_ctl"
            wrapper.write_text(f'#!/bin/sh\nexec runuser -u postgres -- "{executable}" "$@"\n')
            wrapper.chmod(0o755)
            executable = str(wrapper)
        port = _free_port()
        executor = PostgreSQLExecutor(
            executable=executable,
            host="127.0.0.1",
            port=port,
            datadir=str(base / "data"),
            unixsocketdir=str(base),
            logfile=str(base / "postgres.log"),
            startparams="-w",
            dbname="postgres",
            postgres_options="-c fsync=off -c max_connections=200",
        )
        executor.start()
        try:
            running = Cluster(executor)
            running.wait_ready()
            yield running
        finally:
            executor.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
