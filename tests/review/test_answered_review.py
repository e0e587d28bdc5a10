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
