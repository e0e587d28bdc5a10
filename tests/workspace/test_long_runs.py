"""Long runs and long-lived processes: the append-only path, its history, released runs."""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel

from corral import AgentSpec, CorralSaver, EdgeSpec, FlowSpec, GuardSpec, SchemaSpec, Team, WhenSpec
from corral.workspace import _held

STEPS = 1_200  # past one full copy of the path (every 1,000 steps)


class Count(BaseModel):
    count: int
    limit: int
    done: bool


def loop_team(
    steps: int, fail_at: set[int] | None = None, keep: int | None = None, review: bool = False
) -> Team:
    """One function agent that hands its count on to itself ``steps`` times; it raises
    once at each count in ``fail_at``; ``review``: a person approves the output."""
    failing = set(fail_at or ())

    def step(payload: Count) -> dict[str, Any]:
        if payload.count in failing:
            failing.discard(payload.count)
            raise RuntimeError(f"failed once at {payload.count}")
        n = payload.count + 1
        return {"count": n, "limit": payload.limit, "done": n >= payload.limit}

    raw: dict[str, Any] = {"checkpoint": {"keep": keep}} if keep else {}
    return Team(
        name="long_loop",
        schemas={"Count": SchemaSpec(model=Count)},
        agents=[AgentSpec(id="loop", kind="function", function=step)],
        flow=FlowSpec(
            entry="loop",
            input="Count",
            output="Count",
            edges=[
                EdgeSpec(
                    from_="loop",
                    to="loop",
                    schema_name="Count",
                    when=WhenSpec(field="done", equals=False),
                ),
                EdgeSpec(from_="loop", to="END", schema_name="Count", review=review),
            ],
        ),
        guards=GuardSpec(max_steps=steps + 10),
        **raw,
    )


def path_bytes(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute(
                "SELECT coalesce(sum(length(blob)), 0) FROM cp_blobs WHERE channel = '_path'"
            ).fetchone()[0]
        )


def test_the_path_is_stored_once_per_step_not_whole_at_every_step(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    app = loop_team(STEPS).compile(db=db)
    result = app.run({"count": 0, "limit": STEPS, "done": False}, run_id="long")
    assert result.ok
    assert result.path == ["loop"] * STEPS
    # Whole at every step this was sum(6 * k) ~ 4.3 MB; now one full copy at step 1,000.
    assert path_bytes(db) < 10 * STEPS
    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM cp_blobs WHERE channel = '_path' AND type != 'empty'"
        ).fetchone()[0]
    assert stored == 1
    # Read back from the checkpoints alone: the full path, rebuilt from its writes.
    state = app.graph.get_state(app.config("long"))
    assert state.values["_path"] == ["loop"] * STEPS
    assert app.workspace.runs.get("long").path == ["loop"] * STEPS  # type: ignore[union-attr]
    steps = app.trace("long").of("step")
    assert len(steps) == STEPS
    assert [s.detail["output"]["count"] for s in steps[:3]] == [1, 2, 3]
    app.close()


def test_a_resumed_run_rebuilds_its_path_across_the_full_copy(tmp_path: Path) -> None:
    app = loop_team(STEPS, fail_at={1_100}).compile(db=tmp_path / "w.db")
    failed = app.run({"count": 0, "limit": STEPS, "done": False}, run_id="r")
    assert failed.status == "failed"
    assert failed.path == ["loop"] * 1_100
    assert app.workspace.saver.remembered == 0  # released when it failed
    app.close()
    fresh = loop_team(STEPS).compile(db=tmp_path / "w.db")  # another process, in effect
    resumed = fresh.resume("r")
    assert resumed.ok, resumed.errors
    assert resumed.output == {"count": STEPS, "limit": STEPS, "done": True}
    assert resumed.path == ["loop"] * STEPS
    fresh.close()


def test_a_run_that_prunes_its_checkpoints_keeps_its_whole_path(tmp_path: Path) -> None:
    app = loop_team(300, keep=5).compile(db=tmp_path / "w.db")
    assert app.run({"count": 0, "limit": 300, "done": False}, run_id="k").ok
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("SELECT count(*) FROM cp_checkpoints").fetchone()[0] <= 10
    assert app.graph.get_state(app.config("k")).values["_path"] == ["loop"] * 300
    app.close()


def test_finished_runs_are_not_remembered_by_the_saver(tmp_path: Path) -> None:
    app = loop_team(3).compile(db=tmp_path / "w.db")
    for _ in range(30):
        assert app.run({"count": 0, "limit": 3, "done": False}).ok
    assert app.workspace.saver.remembered == 0
    app.close()


def test_a_paused_run_is_released_and_resumes(tmp_path: Path) -> None:
    app = loop_team(5, review=True).compile(db=tmp_path / "w.db")
    paused = app.run({"count": 0, "limit": 5, "done": False}, run_id="p")
    assert paused.status == "paused"
    assert app.workspace.saver.remembered == 0
    done = app.resume("p", approve=True)
    assert done.ok, done.errors
    assert done.path == ["loop"] * 5
    assert app.workspace.saver.remembered == 0
    app.close()


def test_runs_past_the_limit_are_forgotten_and_their_writes_still_land(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_held, "MAX_HEADS", 3)
    saver = CorralSaver(tmp_path / "w.db")
    stored = {}
    for i in range(6):
        config = {"configurable": {"thread_id": f"t{i}", "checkpoint_ns": ""}}
        cp = empty_checkpoint()
        cp["channel_values"], cp["channel_versions"] = {"v": i}, {"v": 1}
        stored[i] = saver.put(config, cp, {}, {"v": 1})
        saver.put_writes(stored[i], [("v", i * 10)], task_id=f"task{i}")
    assert saver.remembered == 3
    for i in range(6):  # held (newest three) or committed at once (the forgotten)
        found = saver.get_tuple(stored[i])
        assert found is not None
        assert found.pending_writes == [(f"task{i}", "v", i * 10)]
    saver.close()
    reopened = CorralSaver(tmp_path / "w.db")  # close() committed what was held
    assert all(reopened.get_tuple(stored[i]).pending_writes for i in range(6))  # type: ignore[union-attr]
    reopened.close()


def extend(state: list[str], writes: Sequence[list[str]]) -> list[str]:
    return [*state, *(x for w in writes for x in w)]


class Log(TypedDict):
    log: Annotated[list[str], DeltaChannel(extend, snapshot_frequency=4)]
    n: Annotated[int, operator.add]


def log_graph(saver: CorralSaver, steps: int) -> Any:
    """A loop whose steps fan out to two writers of an append-only channel."""
    builder = StateGraph(Log)
    builder.add_node("head", lambda s: {"n": 1, "log": [f"head{s['n']}"]})
    builder.add_node("side", lambda p: {"log": [f"side{p['i']}"]})
    builder.add_edge(START, "head")
    builder.add_conditional_edges(
        "head",
        lambda s: END if s["n"] >= steps else [Send("side", {"i": s["n"]}), "head"],
        ["side", "head", END],
    )
    return builder.compile(checkpointer=saver)


def test_the_history_walk_matches_langgraphs_own(tmp_path: Path) -> None:
    saver = CorralSaver(tmp_path / "w.db")
    graph = log_graph(saver, 11)
    config: Any = {"configurable": {"thread_id": "d"}}
    graph.invoke({"n": 0, "log": []}, config)
    history = list(graph.get_state_history(config))
    fork = graph.update_state(history[5].config, {"log": ["edited"]})  # a branch off step 5
    graph.invoke(None, fork)
    compared, seeded, replayed = 0, 0, 0
    for snapshot in graph.get_state_history(config):
        ours = saver.get_delta_channel_history(config=snapshot.config, channels=["log"])
        theirs = BaseCheckpointSaver.get_delta_channel_history(
            saver, config=snapshot.config, channels=["log"]
        )
        assert ours == theirs
        compared += 1
        seeded += "seed" in ours["log"]
        replayed += bool(ours["log"]["writes"])
    assert compared >= 15  # both branches, from the root to each head
    assert seeded >= 5  # walks that stopped at a full copy (every 4 updates)
    assert replayed >= 10
    final = graph.get_state(config).values["log"]
    assert "edited" in final
    assert final[: len(history[5].values["log"])] == history[5].values["log"]
    saver.close()


@pytest.mark.parametrize("value", ["Ч ж ש ب", 1.5e300, -(2**40), {"k": ["x", 2.5]}])
def test_values_with_extension_marker_bytes_still_decode(tmp_path: Path, value: Any) -> None:
    # Bytes 0xc7-0xc9 and 0xd4-0xd8 mark msgpack extensions; inside strings and numbers
    # they are data, and such a blob is scanned for refused types, then decoded.
    saver = CorralSaver(tmp_path / "w.db")
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    cp = empty_checkpoint()
    cp["channel_values"], cp["channel_versions"] = {"v": value}, {"v": 1}
    found = saver.get_tuple(saver.put(config, cp, {}, {"v": 1}))
    assert found is not None
    assert found.checkpoint["channel_values"] == {"v": value}
    saver.close()
