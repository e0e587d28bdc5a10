"""The input node: the flow's input, as LangGraph hands it in, becomes the first handoff.

The graph's input schema is the flow's input schema, so ``app.graph.invoke(ticket)``
works as it does for any LangGraph graph; LangGraph validates the input against it. A
run started through the graph itself (not through the ``App``) is registered here, so
it is guarded, metered and traced like any other.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command
from pydantic import BaseModel

from corral.keys import DRIVER_KEY, INPUT_NODE
from corral.manifest import TeamPlan
from corral.nodes._base import Node, Steps, io
from corral.nodes._services import Services
from corral.nodes._state import NO_USAGE, Handoff

INPUT = INPUT_NODE
"""The node that takes the flow's input."""


class InputNode(Node):
    """Turns the flow's input into the entry agent's handoff (registering the run)."""

    name = INPUT

    def __init__(self, plan: TeamPlan, services: Services) -> None:
        self.plan = plan
        self.services = services

    def steps(self, state: Any, config: RunnableConfig) -> Steps:
        plan = self.plan
        payload = state.model_dump(mode="json") if isinstance(state, BaseModel) else dict(state)
        if not (config.get("metadata") or {}).get(DRIVER_KEY):  # not started by the App
            run_id = str((config.get("configurable") or {}).get("thread_id", ""))
            if run_id and (yield io(self.services.runs.get, run_id)) is None:
                manifest = str(plan.source) if plan.source is not None else None
                yield io(self.services.runs.start, run_id, plan.name, manifest, payload)
        handoff = Handoff(
            source="input",
            target=plan.entry,
            schema=plan.input_name,
            payload=payload,
            checked=True,
        )
        return Command(
            goto=plan.entry,
            update={"_handoff": handoff, "_path": [], "_usage": NO_USAGE, "_output": None},
        )
