"""A flow step writes and reads only the channels it needs (each one costs LangGraph work
on every step): its handoff and path, its usage only when it used a model; it reads its
inbound, and its path and usage only when it may end the run."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from corral import AgentSpec, EdgeSpec, FlowSpec, SchemaSpec, Team

IDS = ["n0", "n1", "n2"]


class Work(BaseModel):
    step: int
    done: bool


def advance(payload: Work) -> dict[str, Any]:
    return {"step": payload.step + 1, "done": payload.step + 1 >= len(IDS)}


def chain(kind: str, *, review: bool = False) -> Team:
    agents = [
        AgentSpec(id=i, kind="function", function=advance)
        if kind == "function"
        else AgentSpec(id=i, role="Worker", instructions="Advance the work.")
        for i in IDS
    ]
    edges = [EdgeSpec(from_=a, to=b, schema_name="Work") for a, b in itertools.pairwise(IDS)]
    edges.append(EdgeSpec(from_=IDS[-1], to="END", schema_name="Work", review=review))
    return Team(
        name=f"writes_{kind}",
        schemas={"Work": SchemaSpec(model=Work)},
        agents=agents,
        flow=FlowSpec(entry=IDS[0], input="Work", output="Work", edges=edges),
    )


def updates(kind: str, tmp_path: Path) -> tuple[list[tuple[str, set[str]]], Any, Any]:
    """Each step's written channels, from a run started through the graph itself, with
    its registry record; and the result of the same run by ``app.run``."""
    with chain(kind).compile(db=tmp_path / "w.db") as app:
        chunks = list(
            app.graph.stream({"step": 0, "done": False}, app.config("g"), stream_mode="updates")
        )
        record = app.runs.get("g")
        result = app.run({"step": 0, "done": False}, run_id="r")
    steps = [(node, set(update)) for chunk in chunks for node, update in chunk.items()]
    return steps, record, result


def test_a_function_step_writes_its_handoff_and_path_only(tmp_path: Path) -> None:
    steps, record, result = updates("function", tmp_path)
    assert [node for node, _ in steps] == IDS
    assert [keys for _, keys in steps[:-1]] == [{"_handoff", "_path"}] * 2
    assert steps[-1][1] == {"_handoff", "_path", "_output", "step", "done"}
    assert record is not None
    assert record.status == "completed"
    assert record.path == IDS
    assert record.output == {"step": 3, "done": True}
    assert result.ok
    assert result.path == IDS
    assert result.usage["llm_calls"] == 0


def test_an_agent_step_writes_its_usage_too(tmp_path: Path) -> None:
    steps, record, result = updates("agent", tmp_path)
    assert [node for node, _ in steps] == IDS
    assert all({"_handoff", "_path", "_usage"} <= keys for _, keys in steps)
    assert record is not None
    assert record.status == "completed"
    assert record.path == IDS
    assert record.usage["llm_calls"] == len(IDS)  # summed from the steps' _usage writes
    assert result.ok
    assert result.usage["llm_calls"] == len(IDS)


def test_a_step_reads_its_inbound_and_at_the_end_its_path_and_usage(tmp_path: Path) -> None:
    with chain("function").compile(db=tmp_path / "w.db") as app:
        read = {node: set(app.graph.nodes[node].channels) for node in IDS}
    assert read["n1"] == {"_handoff"}
    assert read["n2"] == {"_handoff", "_path", "_usage"}
    assert {"step", "done", "_handoff"} <= read["n0"]  # the entry reads the flow's input


def test_a_team_declares_the_review_and_join_channels_only_when_it_has_them(
    tmp_path: Path,
) -> None:
    with chain("function").compile(db=tmp_path / "a.db") as app:
        plain = set(app.graph.channels)
    assert {"_handoff", "_path", "_usage", "_output"} <= plain
    assert not {"_review", "_rejected", "_joined"} & plain
    with chain("function", review=True).compile(db=tmp_path / "b.db") as app:
        reviewed = set(app.graph.channels)
    assert {"_review", "_rejected"} <= reviewed
    assert "_joined" not in reviewed


def test_no_blob_row_is_stored_for_a_version_without_a_value(tmp_path: Path) -> None:
    with chain("function").compile(db=tmp_path / "w.db") as app:
        result = app.run({"step": 0, "done": False}, run_id="r")
        state = app.graph.get_state(app.config("r"))
    conn = sqlite3.connect(tmp_path / "w.db")
    kinds = dict(conn.execute("SELECT type, count(*) FROM cp_blobs GROUP BY type").fetchall())
    conn.close()
    assert "empty" not in kinds  # consumed triggers and the path's versions: no rows
    assert sum(kinds.values()) > 0
    assert result.path == IDS
    assert state.values["_path"] == IDS  # read back whole from the stored writes
    assert state.values["_output"] == {"step": 3, "done": True}


def test_a_driven_runs_checkpoints_carry_no_run_metadata_but_the_drivers_mark(
    tmp_path: Path,
) -> None:
    """LangGraph copies every metadata key of a run's config into each checkpoint and node
    config; an App run carries only its driver mark (its run id is the thread id)."""
    with chain("function").compile(db=tmp_path / "w.db") as app:
        app.run({"step": 0, "done": False}, run_id="r")
        history = list(app.graph.get_state_history(app.config("r")))
    assert len(history) == len(IDS) + 2  # the input, each step, the start
    for snapshot in history:
        corral_keys = {key for key in snapshot.metadata or {} if key.startswith("corral")}
        assert corral_keys == {"corral_driver"}


def test_app_run_tells_a_pause_and_an_end_apart_with_or_without_on_step(
    tmp_path: Path,
) -> None:
    """Without ``on_step`` the App reads LangGraph's ``values`` chunks, with it ``updates``
    chunks: both see a run that waits for a person, and both end a run the same way."""
    seen: list[str] = []
    with chain("function", review=True).compile(db=tmp_path / "w.db") as app:
        quiet = app.run({"step": 0, "done": False}, run_id="quiet")
        told = app.run(
            {"step": 0, "done": False}, run_id="told", on_step=lambda e: seen.append(e.agent)
        )
        approved = app.resume("quiet", approve=True)
    assert quiet.status == told.status == "paused"
    assert quiet.path == told.path == IDS
    assert seen == IDS[:-1]  # the last step waits for the review before it hands on
    assert approved.status == "completed"
    assert approved.output == {"step": 3, "done": True}
    with chain("function").compile(db=tmp_path / "x.db") as app:
        ended = app.run({"step": 0, "done": False}, run_id="e")
        stepped = app.run({"step": 0, "done": False}, run_id="s", on_step=lambda _: None)
    assert ended.status == stepped.status == "completed"
    assert ended.output == stepped.output == {"step": 3, "done": True}
    assert ended.path == stepped.path == IDS
