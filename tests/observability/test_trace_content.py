"""What a trace holds: tool calls, prompts and answers under the team's content policy,
payloads as JSON objects, and reading it needs no provider credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral import ScriptedChatModel, load_team
from tests.graphs.test_stream import TEAM, TOOLS


def traced(write: Callable[..., Path], tmp_path: Path, policy: str | None) -> Any:
    write("tools.py", TOOLS)
    write("script.yaml", "replies: []\n")
    extra = f"trace: {{content: {policy}}}\n" if policy else ""
    team = load_team(write("team.yaml", TEAM.format(review="") + extra))
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"invoice_id": "INV-3"})
        return app.trace(result.run_id)


def test_tool_calls_are_in_the_trace(write: Callable[..., Path], tmp_path: Path) -> None:
    trace = traced(write, tmp_path, None)
    (call,) = trace.of("tool_call")
    assert (call.agent, call.detail["tool"]) == ("clerk", "invoice_status")
    assert call.detail["arguments"] == {"invoice_id": "INV-3"}
    assert call.detail["result"] == "INV-3: paid twice"


def test_prompts_are_redacted_by_default(write: Callable[..., Path], tmp_path: Path) -> None:
    calls = traced(write, tmp_path, None).of("llm_call")
    content = calls[0].detail["content"]
    assert set(content) == {"prompt", "response"}
    assert set(content["prompt"]) == {"chars", "sha256"}
    assert content["prompt"]["chars"] > 0
    assert len(content["prompt"]["sha256"]) == 64
    assert "Billing clerk" not in json.dumps(content)  # sizes and hashes only


def test_full_content_keeps_the_messages_and_none_keeps_nothing(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    full = traced(write, tmp_path / "full", "full").of("llm_call")
    prompt = full[0].detail["content"]["prompt"]
    assert prompt[0]["role"] == "system"
    assert "Billing clerk" in prompt[0]["content"]
    assert "tool_calls" in full[0].detail["content"]["response"]  # it asked for the tool
    none = traced(write, tmp_path / "none", "none").of("llm_call")
    assert {c.detail["content"] for c in none} == {None}


@pytest.fixture
def openai_team(write: Callable[..., Path], tmp_path: Path) -> tuple[Path, str]:
    """A team declared on an OpenAI model, run here on the scripted model in its place."""
    write("tools.py", TOOLS)
    write("script.yaml", "replies: []\n")
    declared = TEAM.format(review="").replace(
        "default: {use: scripted, script: script.yaml}", 'default: {use: "openai:gpt-4o-mini"}'
    )
    team_file = write("team.yaml", declared)
    stand_in = {"default": ScriptedChatModel()}
    with load_team(team_file).compile(db=tmp_path / "w.db", chat_models=stand_in) as app:
        result = app.run({"invoice_id": "INV-4"})
    assert result.ok
    return team_file, result.run_id


def test_runs_show_needs_no_provider_credentials_and_gives_json_objects(
    openai_team: tuple[Path, str], tmp_path: Path
) -> None:
    team_file, run_id = openai_team
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    shown = subprocess.run(
        [sys.executable, "-m", "corral", "runs", "show", run_id, "--db", "w.db", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    events = json.loads(shown.stdout)
    step = next(e for e in events if e["kind"] == "step")
    assert step["detail"]["inbound"] == {"invoice_id": "INV-4"}  # an object, not a string
    assert isinstance(step["detail"]["output"], dict)
    assert [e["kind"] for e in events].count("tool_call") == 1
    assert team_file.exists()
