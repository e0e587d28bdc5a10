"""The trace's steps, read from the saver's checkpoints, are exactly what LangGraph's
``get_state_history`` gives, on runs with delegation, reviews, failures, tool calls,
parallel branches, guard trips and an update; and the history is rebuilt by LangGraph
only where the saved writes cannot name a step's tasks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig

import corral.graphs._reading as reading
from corral import StepDone, load_team
from corral.graphs._build import shape_graph
from corral.observability import steps
from tests.conftest import ROOT, SUPPORT_DESK, TICKET
from tests.graphs.test_parallel import TEAM as PARALLEL
from tests.graphs.test_stream import DELEGATE, ORG, STORM, mixed


def old_steps(app: Any, run_id: str) -> list[dict[str, Any]]:
    """The steps as the trace read them before: through ``get_state_history``."""
    reader = shape_graph(app.plan, app.workspace.saver, path=False)
    config: RunnableConfig = {"configurable": {"thread_id": run_id}}
    joins = {a.id: a.in_name for a in app.plan.agents.values() if a.gathers}
    parallel = reading.parallel_steps(app.plan)
    history = [  # with the handoffs a parallel step sent, as the trace reads them
        reading._Step(
            {**h.values, "_sent": reading._sent(app.workspace.saver.get_tuple(h.config))},
            h.created_at,
            h.tasks,
        )
        for h in reader.get_state_history(config)
    ]
    found = steps(history, app.plan.input_name, joins, parallel)
    return [e.to_dict() for e in found]


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The checkpoints read through LangGraph rather than from the saved writes."""
    seen: list[str] = []
    real = reading._snapshot

    def counted(reader: Any, item: Any) -> Any:
        seen.append(item.config["configurable"]["checkpoint_id"])
        return real(reader, item)

    monkeypatch.setattr(reading, "_snapshot", counted)
    return seen


def same(app: Any, run_id: str, slow: list[str], langgraph_reads: int = 1) -> list[dict[str, Any]]:
    """Assert the trace's steps are the old ones, in the same order, and that LangGraph
    rebuilt only ``langgraph_reads`` checkpoints (the newest); return the old ones."""
    slow.clear()
    new = [e.to_dict() for e in app.trace(run_id) if e.kind in ("step", "input")]
    old = old_steps(app, run_id)
    assert new == sorted(old, key=lambda e: e["at"])
    assert len(new) >= 2
    assert len(slow) == langgraph_reads, slow
    return old


def test_support_desk(tmp_path: Path, slow: list[str]) -> None:
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        result = app.run(json.loads(TICKET.read_text()))
        old = same(app, result.run_id, slow)
    assert [e["agent"] for e in old if e["kind"] == "step"] == result.path


def test_guard_trips_subtasks_and_delegation_rounds(tmp_path: Path, slow: list[str]) -> None:
    with load_team(ROOT / "examples" / "runaway" / "team.yaml").compile(
        db=tmp_path / "w.db"
    ) as app:
        result = app.run({"goal": "an email"})
        same(app, result.run_id, slow)


def test_delegation(write: Callable[..., Path], tmp_path: Path, slow: list[str]) -> None:
    write("script.yaml", DELEGATE)
    with load_team(write("org.yaml", ORG)).compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "why?"})
        assert result.ok
        same(app, result.run_id, slow)


def test_failures_retries_and_tool_calls(
    write: Callable[..., Path], tmp_path: Path, slow: list[str]
) -> None:
    with mixed(write).compile(db=tmp_path / "w.db") as app:
        result = app.run({"invoice_id": "INV-7"})
        assert result.ok
        same(app, result.run_id, slow)


def test_a_failed_run(write: Callable[..., Path], tmp_path: Path, slow: list[str]) -> None:
    with mixed(write, STORM + "    - {error: rate_limit}\n" * 3).compile(
        db=tmp_path / "w.db"
    ) as app:
        result = app.run({"invoice_id": "INV-8"})
        assert not result.ok
        old = same(app, result.run_id, slow)
    assert any(e["detail"]["decision"].startswith("error") for e in old if e["kind"] == "step")


def test_a_review_paused_then_approved(
    write: Callable[..., Path], tmp_path: Path, slow: list[str]
) -> None:
    team = mixed(write, "replies: []\n", review=", review: true")
    with team.compile(db=tmp_path / "w.db") as app:
        paused = app.run({"invoice_id": "INV-9"})
        old = same(app, paused.run_id, slow)
        assert any("review" in e["summary"] for e in old)
        done = app.resume(paused.run_id, approve=True)
        assert done.ok
        same(app, paused.run_id, slow, langgraph_reads=2)  # the answer came from outside


def test_a_review_answered_with_an_edit(
    write: Callable[..., Path], tmp_path: Path, slow: list[str]
) -> None:
    team = mixed(write, "replies: []\n", review=", review: true")
    with team.compile(db=tmp_path / "w.db") as app:
        paused = app.run({"invoice_id": "INV-9"})
        payload = app.pending()[0]["payload"]
        done = app.resume(paused.run_id, edit={**payload, "status": "refunded"})
        assert done.ok
        assert done.output["status"] == "refunded"
        same(app, paused.run_id, slow, langgraph_reads=2)  # the answer came from outside


def test_a_state_updated_from_outside(tmp_path: Path, slow: list[str]) -> None:
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        result = app.run(json.loads(TICKET.read_text()))
        app.graph.update_state(app.config(result.run_id), {"_handoff": None})
        same(app, result.run_id, slow, langgraph_reads=2)  # the update, and the one before


def test_parallel_branches(write: Callable[..., Path], tmp_path: Path, slow: list[str]) -> None:
    team = load_team(write("team.yaml", PARALLEL.format(technical_type="Finding")))
    with team.compile(db=tmp_path / "w.db") as app:
        live = [e for e in app.stream({"summary": "charged twice"}) if isinstance(e, StepDone)]
        run_id = live[0].run_id
        old = same(app, run_id, slow)
        traced = {e.agent: e.detail for e in app.trace(run_id).of("step")}
    assert sorted(e["agent"] for e in old if e["kind"] == "step")[:2] == ["billing", "technical"]
    for step in live:  # the join's inbound is every branch's answer, as it ran
        assert (traced[step.agent]["inbound_schema"], traced[step.agent]["inbound"]) == (
            step.inbound_schema,
            step.inbound,
        ), step.agent
