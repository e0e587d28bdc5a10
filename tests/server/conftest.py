"""A real uvicorn serving ``create_app`` on a free loopback port, in a thread."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from corral.server import create_app
from tests.conftest import ROOT

REVIEWED = """\
version: 1
name: reviewed
schemas:
  Question: {fields: {text: str}}
  Answer: {fields: {text: str, score: {type: int, ge: 0, le: 10}}}
agents:
  - {id: solver, role: Solver}
flow:
  entry: solver
  input: Question
  output: Answer
  edges: [{from: solver, to: END, schema: Answer, review: true}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SLOW = REVIEWED.replace("name: reviewed", "name: slow_review").replace(
    "schemas:", "models: {default: {use: scripted, params: {latency: 0.3}}}\nschemas:"
)


def teams(folder: Path) -> list[Path]:
    """The served teams: ``reviewed`` (scripted model, a review before END),
    ``slow_review`` (the same, its model taking 0.3 s a call) and ``chain`` (four function
    steps, each sleeping ``pause`` seconds)."""
    shutil.copytree(ROOT / "tests" / "fixtures" / "chain", folder / "chain")
    (folder / "reviewed.yaml").write_text(REVIEWED)
    (folder / "slow.yaml").write_text(SLOW)
    return [folder / "reviewed.yaml", folder / "slow.yaml", folder / "chain" / "team.yaml"]


class Served:
    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("serve")
    with running(create_app(teams(folder), db=folder / "w.db"), folder) as found:
        yield found


@contextmanager
def running(app: Any, folder: Path) -> Iterator[Served]:
    """``app`` served by uvicorn on a free loopback port, in a thread, until the end."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server stopped"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", folder)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
