"""The graph runner: a compiled LangGraph graph as one node of the flow, typed by its
edges like any agent. It gets the inbound payload as its input; the fields of its
result that the output schema names are the answer, validated before they go on."""

from __future__ import annotations

from typing import Any

from corral.errors import CorralError, HandoffError, NodeError
from corral.manifest import AgentPlan, validate
from corral.nodes._base import Call, Inbound, Steps, Work
from corral.nodes._state import NO_USAGE


class GraphRunner:
    """Runs ``graph`` (any LangGraph ``Pregel``) on the payload; validates its answer."""

    def __init__(self, plan: AgentPlan, graph: Any) -> None:
        self.plan = plan
        self.graph = graph

    def answer(self, inbound: Inbound, work: Work) -> Steps:
        agent = self.plan.id
        try:
            value = yield Call(self.graph, dict(inbound.payload), work.config)
        except CorralError:
            raise
        except Exception as exc:
            raise NodeError(
                f"graph node {agent!r} raised {type(exc).__name__}: {exc}", agent=agent
            ) from exc
        fields = self.plan.out_schema.model_fields
        answer = (
            {k: v for k, v in value.items() if k in fields} if isinstance(value, dict) else value
        )
        payload, errors = validate(self.plan.out_schema, answer)
        if payload is None:
            raise HandoffError(agent=agent, schema=self.plan.out_name, errors=errors, attempts=1)
        return payload, NO_USAGE
