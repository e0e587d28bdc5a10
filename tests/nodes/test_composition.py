"""Composition both ways: a compiled LangGraph graph as a node of a team (``kind: graph``),
and a corral team as a node inside a user's own LangGraph graph."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from pydantic import ValidationError
from typing_extensions import TypedDict

from corral import AgentSpec, ManifestError, load_team
from tests.conftest import SUPPORT_DESK, TICKET

TEAM = """\
version: 1
name: composed
schemas:
  Order: {fields: {item: str, quantity: int}}
  Priced: {fields: {item: str, total: float}}
agents:
  - {id: pricing, kind: graph, graph: "pricing:graph"}
  - {id: writer, role: Writer}
flow:
  entry: pricing
  input: Order
  output: Priced
  edges:
    - {from: pricing, to: writer, schema: Priced}
    - {from: writer, to: END, schema: Priced}
"""
PRICING = """\
from typing_extensions import TypedDict
from langgraph.graph import StateGraph, START, END

class S(TypedDict, total=False):
    item: str
    quantity: int
    total: float
    scratch: str

def price(state):
    return {"total": {PRICE} * state["quantity"], "scratch": "kept inside the graph"}

builder = StateGraph(S)
builder.add_node("price", price)
builder.add_edge(START, "price")
builder.add_edge("price", END)
graph = builder.compile()
"""


def composed(write: Callable[..., Path], price: str = "2.5") -> Any:
    write("pricing.py", PRICING.replace("{PRICE}", price))
    return load_team(write("team.yaml", TEAM))


def test_a_compiled_langgraph_graph_is_a_typed_node(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    with composed(write).compile(db=tmp_path / "w.db") as app:
        result = app.run({"item": "widget", "quantity": 4})
        trace = app.trace(result.run_id)
    assert result.status == "completed", result.errors
    first = trace.of("step")[0]
    assert (first.agent, first.detail["output"]) == ("pricing", {"item": "widget", "total": 10.0})
    assert "graph" in app.plan.agent("pricing").marks


def test_a_graph_whose_answer_does_not_fit_fails_the_handoff(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    with composed(write, price='"free"').compile(db=tmp_path / "w.db") as app:
        result = app.run({"item": "widget", "quantity": 1})
    assert result.status == "failed"
    assert type(result.errors[0]).__name__ in ("HandoffError", "NodeError")
    assert result.errors[0].agent == "pricing"


def test_a_graph_given_as_a_function_is_a_clear_mistake() -> None:
    class S(TypedDict):
        x: int

    builder = StateGraph(S)
    builder.add_node("n", lambda s: s)
    builder.add_edge(START, "n")
    graph = builder.compile()
    with pytest.raises(ValidationError, match="give it as `graph:` with `kind: graph`"):
        AgentSpec(id="g", kind="function", function=graph)


def test_a_non_graph_is_refused_with_its_line(write: Callable[..., Path]) -> None:
    write("pricing.py", "graph = 42\n")
    with pytest.raises(ManifestError, match="is not a compiled LangGraph graph") as caught:
        load_team(write("team.yaml", TEAM))
    assert caught.value.problems[0].line == 7


class Desk(TypedDict, total=False):
    customer: str
    subject: str
    body: str
    plan: str
    ticket_id: str
    tone: str
    handled: bool


def test_a_team_is_a_node_of_a_users_own_graph(tmp_path: Path) -> None:
    ticket = json.loads(TICKET.read_text())
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        builder = StateGraph(Desk)
        builder.add_node("desk", app.server_graph())  # the team, as a subgraph
        builder.add_node("after", lambda state: {"handled": bool(state["tone"])})
        builder.add_edge(START, "desk")
        builder.add_edge("desk", "after")
        builder.add_edge("after", END)
        outer = builder.compile(checkpointer=InMemorySaver())
        out = outer.invoke(ticket, {"configurable": {"thread_id": "outer-1"}})
        record = app.runs.get("outer-1")
    assert out["handled"] is True
    assert out["ticket_id"].startswith("T-")
    assert record is not None  # the team's run is registered in its workspace
    assert record.status == "completed"
