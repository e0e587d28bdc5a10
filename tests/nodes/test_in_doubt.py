"""A tool call a crash leaves started and unfinished is in doubt: it is never run again
blindly. Killed with SIGKILL while the tool is between its effect and its return, then
resumed through the CLI, as an operator would."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli, run_cli

TEAM = """\
version: 1
name: books
models:
  default: {use: scripted, script: script.yaml}
schemas:
  Entry: {fields: {entry: str}}
  Posted: {fields: {status: str}}
tools:
  post: {import: "tools:post"}
  post_strict: {import: "tools:post_strict", on_in_doubt: fail}
  post_idem: {import: "tools:post_idem", idempotent: true}
agents:
  - {id: clerk, role: Bookkeeper, tools: [post, post_strict, post_idem]}
flow:
  entry: clerk
  input: Entry
  output: Posted
  edges: [{from: clerk, to: END, schema: Posted}]
"""

SCRIPT = """\
agents:
  clerk:
    - tool: {{name: {tool}, args: {{entry: refund INV-7}}}}
    - output: {{status: posted}}
"""

TOOLS = '''\
import os
import time

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool


def _effect(name: str, entry: str, config: RunnableConfig) -> str:
    key = config["metadata"]["corral_idempotency_key"]
    with open(os.environ["EFFECTS"], "a") as f:  # the effect, durable at once
        f.write(f"{name}\\t{entry}\\t{key}\\n")
        f.flush()
        os.fsync(f.fileno())
    time.sleep(float(os.environ.get("AFTER_EFFECT", "0")))  # a window to die in
    return f"posted {entry}"


@tool
def post(entry: str, config: RunnableConfig) -> str:
    """Post an entry to the books (not idempotent)."""
    return _effect("post", entry, config)


@tool
def post_strict(entry: str, config: RunnableConfig) -> str:
    """Post an entry to the books (not idempotent; fail the run if in doubt)."""
    return _effect("post_strict", entry, config)


@tool
def post_idem(entry: str, config: RunnableConfig) -> str:
    """Post an entry to the books, once per key."""
    return _effect("post_idem", entry, config)
'''


RUN = ("run", "team.yaml", "--db", "w.db", "--input", '{"entry": "refund INV-7"}', "--json")


def setup(tmp_path: Path, tool: str) -> Path:
    (tmp_path / "tools.py").write_text(TOOLS)
    (tmp_path / "script.yaml").write_text(SCRIPT.format(tool=tool))
    (tmp_path / "team.yaml").write_text(TEAM)
    return tmp_path / "team.yaml"


def effects(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "effects.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split("\t") for line in lines]


def start(tmp_path: Path, run_id: str, after_effect: float) -> subprocess.Popen[str]:
    env = {**os.environ, "EFFECTS": str(tmp_path / "effects.txt")}
    env["AFTER_EFFECT"] = str(after_effect)
    return subprocess.Popen(
        [sys.executable, "-m", "corral", *RUN, "--run-id", run_id],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def kill_after_effect(tmp_path: Path, run_id: str, count: int, extra: float = 0.0) -> None:
    """Start a run and SIGKILL it once its ``count``-th effect is on disk (plus ``extra``
    seconds; the tool sleeps 5 s after its effect, so it has not returned)."""
    proc = start(tmp_path, run_id, after_effect=5.0)
    deadline = time.monotonic() + 60
    while len(effects(tmp_path)) < count:
        assert proc.poll() is None, "the run ended before its tool's effect"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(extra)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def resume(tmp_path: Path, run_id: str, *decision: str) -> Cli:
    os.environ["EFFECTS"] = str(tmp_path / "effects.txt")  # the tool runs in the child
    return run_cli("resume", run_id, "--db", "w.db", "--json", *decision, cwd=tmp_path)


@pytest.fixture(autouse=True)
def _effects_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTER_EFFECT", "0")
    monkeypatch.setenv("EFFECTS", "unset")


def test_a_plain_tool_in_doubt_waits_for_a_person_and_runs_again_only_if_approved(
    tmp_path: Path,
) -> None:
    setup(tmp_path, "post")
    kill_after_effect(tmp_path, "r1", 1)
    paused = resume(tmp_path, "r1")
    assert paused.code == 4, paused.stderr
    review = paused.json["errors"][0]["review"]
    assert review["kind"] == "in_doubt"
    assert review["target"] == "post"
    assert review["payload"] == {"entry": "refund INV-7"}
    assert "may or may not have happened" in review["reason"]
    assert len(effects(tmp_path)) == 1  # resuming did not run it again

    again = resume(tmp_path, "r1")  # it waits for a decision; nothing runs without one
    assert again.code == 2
    assert "may or may not have happened" in again.stderr
    assert len(effects(tmp_path)) == 1

    done = resume(tmp_path, "r1", "--approve")
    assert done.code == 0, done.stderr
    ran = effects(tmp_path)
    assert len(ran) == 2  # a person decided to run it again: it ran, with the same key
    assert ran[0][2] == ran[1][2]
    shown = run_cli("runs", "show", "r1", "--db", "w.db", "--json", cwd=tmp_path)
    assert "tool_in_doubt" in shown.stdout


def test_a_rejected_call_in_doubt_is_not_run_and_the_agent_is_told(tmp_path: Path) -> None:
    setup(tmp_path, "post")
    kill_after_effect(tmp_path, "r1", 1)
    assert resume(tmp_path, "r1").code == 4
    done = resume(tmp_path, "r1", "--reject", "it was posted: ledger line 42")
    assert done.code == 0, done.stderr
    assert len(effects(tmp_path)) == 1
    assert done.json["status"] == "completed"
    # a later resume of the finished run replays nothing and runs nothing
    assert resume(tmp_path, "r1").code != 4
    assert len(effects(tmp_path)) == 1


def test_on_in_doubt_fail_fails_the_run_without_running_the_tool(tmp_path: Path) -> None:
    setup(tmp_path, "post_strict")
    kill_after_effect(tmp_path, "r1", 1)
    failed = resume(tmp_path, "r1")
    assert failed.code == 1, failed.stderr
    error = failed.json["errors"][0]
    assert error["type"] == "EffectInDoubt"
    assert error["tool"] == "post_strict"
    assert "never finished" in error["message"]
    assert "Traceback" not in failed.stderr
    assert len(effects(tmp_path)) == 1
    assert resume(tmp_path, "r1").code == 1  # and again: it never runs on its own
    assert len(effects(tmp_path)) == 1


def test_an_idempotent_tool_in_doubt_runs_again_with_the_same_key(tmp_path: Path) -> None:
    setup(tmp_path, "post_idem")
    kill_after_effect(tmp_path, "r1", 1)
    done = resume(tmp_path, "r1")
    assert done.code == 0, done.stderr
    ran = effects(tmp_path)
    assert len(ran) == 2
    assert ran[0][2] == ran[1][2]  # the tool can dedupe on it


def test_under_repeated_kills_a_plain_tool_never_runs_twice_without_a_decision(
    tmp_path: Path,
) -> None:
    """Kill at a random moment (before the effect, just after it, or later), recover as an
    operator would, and reject every review of a call in doubt: the effect happens at
    most once, and never zero times unless a person said so."""
    setup(tmp_path, "post")
    rng = random.Random(18)
    in_doubt = 0
    for trial in range(9):
        run_id = f"t{trial}"
        before = len(effects(tmp_path))
        proc = start(tmp_path, run_id, after_effect=0.3)
        early = time.monotonic() + rng.uniform(0.3, 2.0)  # mode 0: maybe before the effect
        while len(effects(tmp_path)) == before and proc.poll() is None:
            if trial % 3 == 0 and time.monotonic() > early:
                break
            time.sleep(0.005)
        time.sleep(
            rng.uniform(0.0, 0.25) if trial % 3 == 1 else rng.uniform(0.25, 0.8) * (trial % 3)
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        decisions = 0
        for _ in range(4):
            outcome = resume(tmp_path, run_id)
            if outcome.code == 2 and "no " in outcome.stderr:  # killed before it began
                outcome = run_cli(*RUN, "--run-id", run_id, cwd=tmp_path)
            if outcome.code == 4:
                assert outcome.json["errors"][0]["review"]["kind"] == "in_doubt"
                decisions += 1
                outcome = resume(tmp_path, run_id, "--reject", "assume it happened")
            if outcome.code == 0:
                break
        assert outcome.code == 0, outcome.stderr
        ran = len(effects(tmp_path)) - before
        assert ran <= 1, f"trial {trial}: the effect happened {ran} times"
        assert ran == 1 or decisions == 1  # no effect only if a person said so
        in_doubt += decisions
    assert in_doubt >= 3  # the kills really did land between an effect and its record


def test_the_started_record_is_durable_before_the_tool_runs(tmp_path: Path) -> None:
    setup(tmp_path, "post")
    kill_after_effect(tmp_path, "r1", 1)
    row = run_cli("runs", "show", "r1", "--db", "w.db", "--json", cwd=tmp_path)
    assert row.code in (0, 1), row.stderr
    calls = [e for e in json.loads(row.stdout) if e["kind"] == "tool_call"]
    assert [c["detail"]["state"] for c in calls] == ["started"]


def test_on_in_doubt_on_an_idempotent_tool_is_a_mistake_at_its_line(tmp_path: Path) -> None:
    setup(tmp_path, "post")
    team = (tmp_path / "team.yaml").read_text()
    marked = team.replace("idempotent: true}", "idempotent: true, on_in_doubt: fail}")
    (tmp_path / "team.yaml").write_text(marked)
    line = next(i for i, text in enumerate(marked.splitlines(), 1) if "post_idem:" in text)
    out = run_cli("validate", "team.yaml", cwd=tmp_path)
    assert out.code == 2
    assert f"team.yaml:{line} (tools.post_idem)" in out.stderr
    assert "on_in_doubt` is for tools that are not idempotent" in out.stderr
    assert "Traceback" not in out.stderr
