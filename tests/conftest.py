"""Shared fixtures: team files on temporary directories, the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from blockbuster import blockbuster_ctx
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from corral import AgentSpec, EdgeSpec, FlowSpec, SchemaSpec, Team

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
SUPPORT_DESK = ROOT / "examples" / "support_desk" / "team.yaml"
TICKET = ROOT / "examples" / "support_desk" / "ticket.json"
CHAIN = ROOT / "tests" / "fixtures" / "chain" / "team.yaml"

MINI = """\
version: 1
name: mini
schemas:
  Question:
    fields:
      text: {{type: str, min_length: 1}}
  Answer:
    fields:
      text: str
      score: {{type: int, ge: 0, le: 10}}
agents:
  - id: solver
    role: Solver
    model: {model}
flow:
  entry: solver
  input: Question
  output: Answer
  edges:
    - {{from: solver, to: END, schema: Answer}}
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write a file (dedented) under the test's temporary directory; return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write


@dataclass
class Cli:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        """The last line of stdout as JSON (the --json contract)."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_cli(*args: str | Path, cwd: Path, stdin: str | None = None, timeout: float = 120) -> Cli:
    """Run ``python -m corral ARGS`` in ``cwd`` and capture everything."""
    proc = subprocess.run(
        [sys.executable, "-m", "corral", *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Cli(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., Cli]:
    """The CLI in a subprocess, working in the test's temporary directory."""

    def _cli(*args: str | Path, stdin: str | None = None) -> Cli:
        return run_cli(*args, cwd=tmp_path, stdin=stdin)

    return _cli


class SeenMessages(BaseCallbackHandler):
    """A LangChain callback that records what each model call was sent."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.calls.extend(messages)


def one_step_team(name: str, schema: type[BaseModel], function: Callable[..., Any]) -> Team:
    """A team of one function agent that hands ``schema`` on to the end."""
    schema_name = schema.__name__
    return Team(
        name=name,
        schemas={schema_name: SchemaSpec(model=schema)},
        agents=[AgentSpec(id="one", kind="function", function=function)],
        flow=FlowSpec(
            entry="one",
            input=schema_name,
            output=schema_name,
            edges=[EdgeSpec(from_="one", to="END", schema_name=schema_name)],
        ),
    )


def run_unblocked(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` with blockbuster on: a blocking call that corral's code makes
    on the event loop (sqlite3, file I/O, ``time.sleep``...) raises ``BlockingError``."""

    async def guarded() -> T:
        with blockbuster_ctx(scanned_modules=["corral"]):
            return await main

    return asyncio.run(guarded())
