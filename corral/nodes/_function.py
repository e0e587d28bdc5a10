"""The function runner: plain Python beside the model-driven agents (deterministic rules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corral.errors import CorralError, HandoffError, NodeError
from corral.manifest import AgentPlan, typed, validate
from corral.nodes._base import Call, Inbound, Steps, Work
from corral.nodes._state import NO_USAGE


class FunctionRunner:
    """Calls ``function(payload)`` with the typed inbound payload; validates what it returns."""

    def __init__(self, plan: AgentPlan, function: Callable[..., Any]) -> None:
        self.plan = plan
        self.function = function
        self.in_schema = plan.in_schema

    def answer(self, inbound: Inbound, work: Work) -> Steps:
        agent = self.plan.id
        given = typed(self.in_schema, inbound.payload)
        try:
            value = yield Call(self.function, given)
        except CorralError:
            raise
        except Exception as exc:
            raise NodeError(
                f"function node {agent!r} raised {type(exc).__name__}: {exc}", agent=agent
            ) from exc
        payload, errors = validate(self.plan.out_schema, value)
        if payload is None:
            raise HandoffError(agent=agent, schema=self.plan.out_name, errors=errors, attempts=1)
        return payload, NO_USAGE
