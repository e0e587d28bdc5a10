"""A resumed node replays the model calls that finished, never billing them again.

A run is killed with SIGKILL while its agent waits for its second model call (after its
first call asked for a tool, and the tool ran), then resumed through the CLI, as an
operator would. The ledger then holds exactly the calls of an uninterrupted run."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

TEAM = """\
version: 1
name: books
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Entry: {{fields: {{entry: str}}}}
  Posted: {{fields: {{status: str}}}}
tools:
  post: {{import: "tools:post"}}
agents:
  - id: clerk
    role: Bookkeeper
    tools: [post]
    budget: {budget}
flow:
  entry: clerk
  input: Entry
  output: Posted
  edges: [{{from: clerk, to: END, schema: Posted}}]
"""
SCRIPT = """\
agents:
  clerk:
    - tool: {name: post, args: {entry: refund INV-7}}
    - {output: {status: posted}, delay: 3}
"""
TOOLS = '''\
import os

from langchain_core.tools import tool


@tool
def post(entry: str) -> str:
    """Post an entry to the books (not idempotent)."""
    with open("effects.txt", "a") as f:
        f.write(entry + "\\n")
        f.flush()
        os.fsync(f.fileno())
    return f"posted {entry}"
'''
RUN = ("run", "team.yaml", "--input", '{"entry": "refund INV-7"}', "--json")


def setup(folder: Path, budget: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "team.yaml").write_text(TEAM.format(budget=budget))
    (folder / "script.yaml").write_text(SCRIPT)
    (folder / "tools.py").write_text(TOOLS)


def effects(folder: Path) -> list[str]:
    path = folder / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


def ledger(folder: Path, run_id: str) -> dict[str, Any]:
    with sqlite3.connect(folder / "w.db") as conn:
        rows = conn.execute(
            "SELECT status, input_tokens, output_tokens FROM usage WHERE run_id = ? ORDER BY id",
            (run_id,),
        ).fetchall()
        replies = conn.execute(
            "SELECT count(*), count(reply) FROM model_replies WHERE run_id = ?", (run_id,)
        ).fetchone()
        totals = conn.execute(
            "SELECT tokens, calls FROM usage_totals WHERE scope = 'run' AND key = ?", (run_id,)
        ).fetchone()
    conn.close()
    return {
        "settled": [tuple(r[1:]) for r in rows if r[0] == "settled"],
        "statuses": sorted(r[0] for r in rows),
        "replies": tuple(replies),
        "run_totals": tuple(totals) if totals else None,
    }


@pytest.mark.parametrize("budget", ["{}", "{max_task_calls: 10, daily_tokens: 1000000}"])
def test_a_node_killed_mid_call_bills_its_finished_calls_once_after_resume(
    tmp_path: Path, budget: str
) -> None:
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    setup(clean, budget)
    setup(crashed, budget)
    ran = run_cli(*RUN, "--db", "w.db", "--run-id", "r1", cwd=clean)
    assert ran.code == 0, ran.stderr
    expected = ledger(clean, "r1")
    assert len(expected["settled"]) == 3  # tool call, text answer, structured answer

    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", *RUN, "--db", "w.db", "--run-id", "r1"],
        cwd=crashed,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not effects(crashed):  # the first call settled and its tool ran
        assert proc.poll() is None, "the run ended before its tool ran"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(1.0)  # well inside the second call's 3 s
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cut = ledger(crashed, "r1")
    assert len(cut["settled"]) == 1  # killed with one call settled, the second unanswered

    done = run_cli("resume", "r1", "--db", "w.db", "--json", cwd=crashed)
    assert done.code == 0, done.stderr
    assert done.json["output"] == ran.json["output"]
    assert done.json["usage"] == ran.json["usage"]
    after = ledger(crashed, "r1")
    assert after["settled"] == expected["settled"]  # each call billed once, none again
    assert after["replies"] == (3, 3)  # each settled call's answer kept, one key each
    assert after["run_totals"] == expected["run_totals"]  # no reservation left held
    if budget != "{}":  # the killed call's reservation was given back, not left held
        assert after["statuses"] == ["released", "settled", "settled", "settled"]
    else:
        assert after["statuses"] == ["settled"] * 3
    assert effects(crashed) == ["refund INV-7"]  # the tool's effect happened once
