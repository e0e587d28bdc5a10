"""``app.graph`` is a LangGraph graph like any other: it takes the flow's input, returns
its output, in every stream mode, sync and async; and a run started through it is
registered, metered and traced like one started by ``app.run``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral import InputError, load_team
from tests.conftest import SUPPORT_DESK, TICKET, run_unblocked

MODES = ["values", "updates", "debug", "tasks", "checkpoints", "custom", "messages"]


def ticket() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TICKET.read_text())
    return data


def test_invoke_takes_the_flow_input_and_returns_its_output(tmp_path: Path) -> None:
    team = load_team(SUPPORT_DESK)
    with team.compile(db=tmp_path / "w.db") as app:
        out = app.graph.invoke(ticket(), app.config("native-1"))
        record = app.runs.get("native-1")
        trace = app.trace("native-1")
        calls = app.ledger.calls("native-1")
        reference = app.run(ticket())
    assert out == reference.output  # the Reply's fields, as app.run returns them
    assert set(out) == set(team.plan.schemas["Reply"].model_fields)
    assert record is not None
    assert (record.status, record.output, record.input) == ("completed", out, ticket())
    assert record.path == reference.path
    assert [s.agent for s in trace.of("step")] == reference.path
    assert len(calls) == reference.usage["llm_calls"]  # metered like any run


def test_every_stream_mode_works_sync_and_async(tmp_path: Path) -> None:
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        for mode in MODES:
            chunks = list(app.graph.stream(ticket(), app.config(f"s-{mode}"), stream_mode=mode))
            assert chunks or mode == "messages", mode

        async def astream(mode: str) -> list[Any]:
            config = app.config(f"a-{mode}")
            return [c async for c in app.graph.astream(ticket(), config, stream_mode=mode)]

        for mode in MODES:
            assert run_unblocked(astream(mode)) or mode == "messages", mode
        values = list(app.graph.stream(ticket(), app.config("v"), stream_mode="values"))
        finished = app.runs.list(status="completed")
    assert set(team_fields := values[-1]) >= {"tone", "subject", "body"}, team_fields
    assert len(finished) == 2 * len(MODES) + 1  # every run registered and ended


def test_the_graphs_schemas_are_the_flows_input_and_output(tmp_path: Path) -> None:
    team = load_team(SUPPORT_DESK)
    with team.compile(db=tmp_path / "w.db") as app:
        given = app.graph.get_input_jsonschema()
        returned = app.graph.get_output_jsonschema()
        with pytest.raises(InputError, match="customer"):
            app.graph.invoke({"subject": "no id"}, app.config("bad"))
    assert given["properties"] == team.plan.schemas["Ticket"].model_json_schema()["properties"]
    assert returned["properties"] == team.plan.schemas["Reply"].model_json_schema()["properties"]


def test_update_state_cannot_place_an_unvalidated_payload(tmp_path: Path) -> None:
    team = load_team(SUPPORT_DESK)
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run(ticket(), run_id="kept")
        config = app.config("kept")
        before = app.graph.get_state(config).values
        bad = {"source": "qa", "target": "writer", "schema": "Review", "payload": {"x": 1}}
        with pytest.raises(InputError, match="_handoff is not a valid Review"):
            app.graph.update_state(config, {"_handoff": bad})
        with pytest.raises(InputError, match="not 'Nope'"):
            app.graph.update_state(config, {"_handoff": {**bad, "schema": "Nope"}})
        with pytest.raises(InputError, match="_output is not a valid Reply"):
            app.graph.update_state(config, {"_output": {"tone": "loud"}})
        assert app.graph.get_state(config).values == before  # nothing changed
        good = {**result.output, "tone": "friendly"}  # type: ignore[dict-item]
        app.graph.update_state(config, {"_output": good})
        assert app.graph.get_state(config).values["_output"] == good


FAILING = """\
version: 1
name: failing
schemas:
  Q: {fields: {text: str}}
agents:
  - {id: entry, kind: function, function: "rules:NAME"}
flow:
  entry: entry
  input: Q
  output: Q
  edges:
    - {from: entry, to: END, schema: Q, review: REVIEW}
"""


def test_graph_started_runs_record_how_they_end(write: Callable[..., Path], tmp_path: Path) -> None:
    write("rules.py", "def boom(q):\n    raise RuntimeError('no')\n\ndef echo(q):\n    return q\n")
    for entry, status in (("boom", "failed"), ("echo", "paused")):
        text = FAILING.replace("NAME", entry).replace("REVIEW", str(entry == "echo").lower())
        team = load_team(write(f"{entry}.yaml", text))
        with team.compile(db=tmp_path / f"{entry}.db") as app:
            if status == "failed":
                with pytest.raises(Exception, match="no"):
                    app.graph.invoke({"text": "x"}, app.config("g"))
            else:
                answer = app.graph.invoke({"text": "x"}, app.config("g"))
                assert "__interrupt__" in answer
            record = app.runs.get("g")
        assert record is not None
        assert record.status == status
        if status == "failed":
            assert record.errors[0]["type"] == "NodeError"


def test_a_failed_run_resumed_through_the_graph_is_recorded_completed_without_its_old_error(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: the record said 'completed' and still carried the NodeError of the failed
    attempt, so ``corral runs`` and the record showed a completed run with an error."""
    flag = tmp_path / "failed-once"
    write(
        "failing_once.py",
        f"import pathlib\nF = pathlib.Path({str(flag)!r})\n\n"
        "def boom(q):\n    if not F.exists():\n        F.touch()\n"
        "        raise RuntimeError('once')\n    return q\n",
    )
    text = FAILING.replace("rules:NAME", "failing_once:boom").replace("REVIEW", "false")
    with load_team(write("boom.yaml", text)).compile(db=tmp_path / "w.db") as app:
        assert app.run({"text": "x"}, run_id="g").status == "failed"
        assert app.graph.invoke(None, app.config("g")) == {"text": "x"}
        record = app.runs.get("g")
    assert record is not None
    assert (record.status, record.errors) == ("completed", [])
