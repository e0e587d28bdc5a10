"""A review answered before its run failed is not asked again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from corral import InputError, load_team

TEAM = """\
version: 1
name: refunds
models:
  default: {use: scripted, script: script.yaml}
schemas:
  Ask: {fields: {text: str}}
  Done: {fields: {text: str}}
tools:
  refund: {import: "refund_tools:refund", requires_review: true}
agents:
  - {id: clerk, role: Clerk, tools: [refund]}
flow:
  entry: clerk
  input: Ask
  output: Done
  edges: [{from: clerk, to: END, schema: Done}]
guards: {retry: {max_attempts: 1}}
"""

TOOLS = '''\
from pathlib import Path
from langchain_core.tools import tool


@tool
def refund(amount: int) -> str:
    """Refund an amount."""
    with Path(__file__).with_name("effects.log").open("a") as f:
        f.write(f"refund {amount}\\n")
    return f"refunded {amount}"
'''

SCRIPT = """\
agents:
  clerk:
    - tool: {name: refund, args: {amount: 5}}
    - error: bad_request
    - auto: true
"""


def test_a_run_that_failed_after_an_approved_tool_call_resumes_without_asking_again(
    write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("refund_tools.py", TOOLS)
    write("script.yaml", SCRIPT)
    monkeypatch.syspath_prepend(str(tmp_path))
    with load_team(write("team.yaml", TEAM)).compile(db=tmp_path / "w.db") as app:
        paused = app.run({"text": "refund please"})
        assert paused.status == "paused"
        failed = app.resume(paused.run_id, approve=True)
        assert failed.status == "failed"  # the model call after the refund failed
        assert (tmp_path / "effects.log").read_text() == "refund 5\n"
        assert app.pending() == []
        with pytest.raises(InputError, match="not waiting for a review"):
            app.resume(paused.run_id, reject="too late")  # it was approved and made
        done = app.resume(paused.run_id)  # the call is not asked about again, nor made
        assert done.status == "completed", done.errors
        assert (tmp_path / "effects.log").read_text() == "refund 5\n"
        calls = app.workspace.tool_calls.calls(paused.run_id)
        assert [(c["tool"], c["state"]) for c in calls] == [("refund", "done")]


def test_a_tool_review_resumed_with_an_unknown_action_does_not_run_the_tool(
    write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: only 'reject' and 'edit' were looked for, so {"action": "rejct"} given
    through the graph was an approval and the refund was made."""
    from langgraph.types import Command

    write("refund_tools.py", TOOLS)
    write("script.yaml", "agents:\n  clerk:\n    - tool: {name: refund, args: {amount: 5}}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with load_team(write("team.yaml", TEAM)).compile(db=tmp_path / "w.db") as app:
        assert app.run({"text": "refund please"}, run_id="r1").status == "paused"
        out = app.graph.invoke(Command(resume={"action": "rejct"}), app.config("r1"))
        assert "unknown action 'rejct'" in out["__interrupt__"][0].value["refused"]
        assert not (tmp_path / "effects.log").exists()
        done = app.resume("r1", reject="no refunds today")
        assert done.status == "completed"
        assert not (tmp_path / "effects.log").exists()
