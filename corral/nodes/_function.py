"""The function node: plain Python beside the model-driven agents (deterministic rules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from corral.errors import CorralError, HandoffError, NodeError
from corral.graphs._state import TeamState, Usage
from corral.nodes._base import Call, Node, Steps
from corral.nodes._handoff import NodePlan, hand_on, validate

_NO_USAGE = Usage(input_tokens=0, output_tokens=0, llm_calls=0)


class FunctionNode(Node):
    """Calls ``function(payload)`` with the typed inbound payload; validates what it returns."""

    def __init__(self, plan: NodePlan, function: Callable[..., Any],
                 in_schema: type[BaseModel]) -> None:
        self.plan = plan
        self.name = plan.agent.id
        self.function = function
        self.in_schema = in_schema

    def steps(self, state: TeamState, config: RunnableConfig) -> Steps:
        agent = self.plan.agent.id
        inbound = self.in_schema.model_validate(state["handoff"]["payload"])
        try:
            value = yield Call(self.function, inbound)
        except CorralError:
            raise
        except Exception as exc:
            raise NodeError(f"function node {agent!r} raised {type(exc).__name__}: {exc}",
                            agent=agent) from exc
        payload, errors = validate(self.plan.out_schema, value)
        if payload is None:
            raise HandoffError(agent=agent, schema=self.plan.out_name, errors=errors, attempts=1)
        return hand_on(self.plan, payload, _NO_USAGE)
