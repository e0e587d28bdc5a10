"""Decisions on a paused run from Python: a malformed decision is an ``InputError`` and
the run stays paused for a good one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral import InputError, load_team

TEAM = """\
version: 1
name: rev
schemas:
  Question: {fields: {text: str}}
  Draft: {fields: {text: {type: str, min_length: 3}, n: int}}
agents:
  - {id: drafter, role: Drafter, instructions: Draft a reply.}
  - {id: sender, role: Sender}
flow:
  entry: drafter
  input: Question
  output: Draft
  edges:
    - {from: drafter, to: sender, schema: Draft, review: true}
    - {from: sender, to: END, schema: Draft}
"""


def test_an_edit_that_is_not_a_mapping_is_refused_and_the_run_stays_paused(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    with load_team(write("team.yaml", TEAM)).compile(db=tmp_path / "w.db") as app:
        assert app.run({"text": "hi"}, run_id="r1").status == "paused"
        listed: Any = ["text", "xyz"]
        with pytest.raises(
            InputError, match="the edit must be a mapping of Draft's fields, not list"
        ):
            app.resume("r1", edit=listed)  # it raised ValueError from dict(["text", "xyz"])
        record = app.runs.get("r1")
        assert record is not None
        assert record.status == "paused"
        done = app.resume("r1", edit={"text": "xyz", "n": 1})
        assert (done.status, done.output) == ("completed", {"text": "xyz", "n": 1})


@pytest.mark.parametrize(
    ("decision", "said"),
    [
        ({"reject": 5}, "reject takes the reason as text, not int 5"),
        ({"reject": True}, "reject takes the reason as text, not bool True"),
        ({"approve": "yes"}, "approve is True or False, not str 'yes'"),
        ({"approve": 1}, "approve is True or False, not int 1"),
    ],
)
def test_a_decision_of_the_wrong_type_is_refused_and_the_run_stays_paused(
    write: Callable[..., Path], tmp_path: Path, decision: dict[str, Any], said: str
) -> None:
    """Before: ``reject=5`` rejected the run with the reason '5', and ``approve="yes"``
    approved it."""
    with load_team(write("team.yaml", TEAM)).compile(db=tmp_path / "w.db") as app:
        assert app.run({"text": "hi"}, run_id="r1").status == "paused"
        with pytest.raises(InputError, match=said) as caught:
            app.resume("r1", **decision)
        assert caught.value.field == next(iter(decision))
        record = app.runs.get("r1")
        assert record is not None
        assert record.status == "paused"


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({"action": "aprove"}, "unknown action 'aprove'"),
        ("approve", "not str 'approve'"),
        ({"action": "edit"}, "an edit needs a payload"),
        ({"action": "edit", "payload": {"text": "x", "n": 1}}, "the edit is not a valid Draft"),
    ],
)
def test_a_malformed_decision_through_the_graph_is_refused_and_a_good_one_still_decides(
    write: Callable[..., Path], tmp_path: Path, given: Any, refused: str
) -> None:
    """Before: the review node raised (RunError, or AttributeError for a non-mapping), and
    LangGraph kept the bad value as the interrupt's answer, so every later resume, even
    ``app.resume(approve=True)``, failed the run with the same error."""
    from langgraph.types import Command

    with load_team(write("team.yaml", TEAM)).compile(db=tmp_path / "w.db") as app:
        assert app.run({"text": "hi"}, run_id="r1").status == "paused"
        out = app.graph.invoke(Command(resume=given), app.config("r1"))
        assert refused in out["__interrupt__"][0].value["refused"]
        record = app.runs.get("r1")
        assert record is not None
        assert record.status == "paused"
        assert refused in app.pending()[0]["refused"]
        done = app.resume("r1", approve=True)
        assert done.status == "completed"


ESCALATING = """\
version: 1
name: esc
schemas:
  Q: {fields: {text: str}}
  A: {fields: {answer: str}}
agents:
  - {id: a, kind: function, function: "fails_once:answer", output: A}
flow: {entry: a, input: Q, output: A, edges: [{from: a, to: END, schema: A}]}
guards: {on_failure: review}
"""


def test_approving_an_escalation_tries_the_agent_again_on_its_input(
    write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: approve validated the escalation's payload (the agent's input, a Q) against
    its output schema (A) first, so "let it through (escalation: try again)" failed the
    run: 'the reviewed payload is not a valid A'."""
    flag = tmp_path / "failed"
    write(
        "fails_once.py",
        f"import pathlib\nF = pathlib.Path({str(flag)!r})\n\n"
        "def answer(q):\n    if not F.exists():\n        F.touch()\n"
        "        raise RuntimeError('not yet')\n    return {'answer': q.text}\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with load_team(write("team.yaml", ESCALATING)).compile(db=tmp_path / "w.db") as app:
        assert app.run({"text": "hi"}, run_id="e1").status == "paused"
        assert app.pending()[0]["kind"] == "escalation"
        done = app.resume("e1", approve=True)
        assert (done.status, done.output) == ("completed", {"answer": "hi"})
