"""Scopes: TTL on every read, publish semantics, isolation, exactly-once tool effects."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from corral import PermissionDenied, load_team, open_workspace
from corral.context import ContextStore
from corral.manifest import Who
from corral.workspace import AuditLog
from tests.conftest import run_unblocked

RED = Who(agent="alice", team="red")
RED_TOO = Who(agent="bob", team="red")
BLUE = Who(agent="carol", team="blue")
BOSS = Who(agent="boss", team="hq", supervisor=True, managed_teams=frozenset({"red"}))


class Clock:
    now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> tuple[ContextStore, Clock, AuditLog]:
    clock = Clock()
    workspace = open_workspace(tmp_path / "w.db", clock=clock)
    audit = workspace.audit
    return (
        ContextStore(lambda: workspace.store, "acme", audit, clock=clock, note_ttl=60),
        clock,
        audit,
    )


def test_notes_expire_on_read_and_published_results_persist(
    store: tuple[ContextStore, Clock, AuditLog],
) -> None:
    context, clock, _ = store
    context.write_note("r", RED, "draft", {"v": 1})
    context.write_note("r", RED, "keep", {"v": 2})
    context.publish("r", RED, "keep")
    assert context.read("r", RED, "private", "draft") == {"v": 1}
    clock.now += 61
    assert context.read("r", RED, "private", "draft") is None  # expired, enforced on read
    assert context.entries("r", RED, "private") == {}
    assert context.read("r", RED, "team", "keep") == {"v": 2}  # published: no TTL
    context.write_note("r", RED, "short", 1, ttl=5)
    clock.now += 6
    assert context.read("r", RED, "private", "short") is None


def test_publish_moves_a_note_to_the_team_only(store: tuple[ContextStore, Clock, AuditLog]) -> None:
    context, _, audit = store
    context.write_note("r", RED, "finding", "the cache is stale")
    assert context.read("r", RED_TOO, "private", "finding") is None  # private stays private
    context.publish("r", RED, "finding")
    assert context.read("r", RED, "private", "finding") is None  # moved, not copied
    assert context.read("r", RED_TOO, "team", "finding") == "the cache is stale"
    assert context.read("r", BOSS, "team", "finding", team="red") == "the cache is stale"
    with pytest.raises(PermissionDenied):
        context.read("r", BLUE, "team", "finding", team="red")
    verdicts = [(a["agent"], a["action"], a["verdict"]) for a in audit.rows("r")]
    assert ("boss", "read", "allowed") in verdicts  # a manager crossing into red, audited
    assert ("carol", "read", "denied") in verdicts


def test_global_is_written_by_supervisors_and_the_operator(
    store: tuple[ContextStore, Clock, AuditLog],
) -> None:
    context, _, audit = store
    context.write_global("r", None, "style", "be brief")
    context.write_global("r", BOSS, "tone", "kind")
    with pytest.raises(PermissionDenied, match="only supervisors"):
        context.write_global("r", RED, "tone", "rude")
    assert context.read("r", BLUE, "global", "tone") == "kind"
    assert sum(a["scope"] == "global" for a in audit.rows("r")) >= 4


TEAM = """\
version: 1
name: {name}
models: {{default: {{use: scripted, script: script.yaml}}}}
schemas:
  Ask: {{fields: {{text: str}}}}
agents:
  - {{id: scribe, role: Scribe, team: writers, context: true}}
flow:
  entry: scribe
  input: Ask
  output: Ask
  edges: [{{from: scribe, to: END, schema: Ask}}]
"""


def test_two_teams_running_concurrently_never_see_each_other(tmp_path: Path) -> None:
    (tmp_path / "script.yaml").write_text(
        json.dumps(
            {
                "agents": {
                    "scribe": [
                        {
                            "tool": {
                                "name": "write_note",
                                "args": {"key": "secret", "value": "mine"},
                            }
                        },
                        {"tool": {"name": "publish", "args": {"key": "secret"}}},
                    ]
                }
            }
        )
    )
    apps = []
    for name in ("north", "south"):
        (tmp_path / f"{name}.yaml").write_text(TEAM.format(name=name))
        apps.append(load_team(tmp_path / f"{name}.yaml").compile(db=tmp_path / "w.db"))

    async def both() -> list[Any]:
        return await asyncio.gather(
            *(app.arun({"text": app.team.name}) for app in apps for _ in range(5))
        )

    results = run_unblocked(both())
    assert {r.status for r in results} == {"completed"}
    scribe = Who(agent="scribe", team="writers")
    for app in apps:
        assert app.context.entries("x", scribe, "team") == {"secret": "mine"}
        keys = [item.namespace for item in app.context.store.search(("corral",), limit=100)]
        assert {tuple(ns[:2]) for ns in keys} == {("corral", "north"), ("corral", "south")}
    for app in apps:
        app.close()


EFFECT_TEAM = """\
version: 1
name: payer
models: {default: {use: scripted, script: script.yaml}}
schemas:
  Ask: {fields: {text: str}}
tools:
  pay: {import: "tools:pay"}
agents:
  - {id: cashier, role: Cashier, tools: [pay]}
flow:
  entry: cashier
  input: Ask
  output: Ask
  edges: [{from: cashier, to: END, schema: Ask}]
"""
PAY = '''\
from pathlib import Path
from langchain_core.tools import tool


@tool
def pay(amount: float) -> str:
    """Pay an amount (a side effect outside corral)."""
    with Path(__file__).with_name("payments.log").open("a") as f:
        f.write(f"{amount}\\n")
    return "paid"
'''


def test_a_side_effecting_tool_runs_exactly_once_across_sigkill_and_resume(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(PAY)
    (tmp_path / "team.yaml").write_text(EFFECT_TEAM)
    # The tool is called, then the model's next answer is slow: the kill lands there.
    (tmp_path / "script.yaml").write_text(
        json.dumps(
            {
                "agents": {
                    "cashier": [
                        {"tool": {"name": "pay", "args": {"amount": 250}}},
                        {"auto": True, "delay": 5},
                    ]
                }
            }
        )
    )
    payments = tmp_path / "payments.log"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral",
            "run",
            "team.yaml",
            "--input",
            '{"text": "pay rent"}',
            "--db",
            "w.db",
            "--run-id",
            "pay1",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not payments.exists():
        assert time.monotonic() < deadline
        assert child.poll() is None
        time.sleep(0.02)
    time.sleep(0.3)  # the call is recorded right after the tool returns
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    (tmp_path / "script.yaml").write_text(
        json.dumps(
            {
                "agents": {
                    "cashier": [{"tool": {"name": "pay", "args": {"amount": 250}}}, {"auto": True}]
                }
            }
        )
    )
    resumed = subprocess.run(
        [sys.executable, "-m", "corral", "resume", "pay1", "--db", "w.db", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["status"] == "completed"
    assert payments.read_text() == "250.0\n"  # the node ran again; the payment did not
