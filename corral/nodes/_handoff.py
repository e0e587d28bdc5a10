"""Pure handoff logic shared by every node kind: validate, route, hand on.

A payload is validated against its edge schema here, before it becomes part of a
``Command`` update; an invalid payload never reaches state or a checkpoint.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END as GRAPH_END
from langgraph.types import Command, Send

from corral.errors import RoutingError
from corral.manifest import END, AgentPlan, EdgeSpec, ReviewPolicy
from corral.nodes._state import Handoff, ReviewRequest, TeamState, Usage
from corral.review import review_reason


def route(plan: AgentPlan, payload: dict[str, Any]) -> EdgeSpec:
    """The first edge whose ``when`` matches ``payload``; the default edge otherwise."""
    for edge in plan.edges:
        if edge.when is None or payload.get(edge.when.field) in edge.when.values:
            return edge
    fields = sorted({e.when.field for e in plan.edges if e.when is not None})
    seen = {f: payload.get(f) for f in fields}
    raise RoutingError(
        f"no edge from {plan.id!r} matches {seen}; add an edge for this "
        "value or a default edge without `when`",
        agent=plan.id,
    )


REVIEW = "__review__"
"""The node where work waits for a person."""


def hand_on(
    plan: AgentPlan,
    payload: dict[str, Any],
    usage: Usage,
    *,
    degraded: bool = False,
    reviewed: bool = False,
) -> Command[str]:
    """The ``Command`` that moves a validated payload along its routed edge, or to review.

    Review comes first when the edge asks for it, or when the payload's confidence is
    below the edge's or the agent's ``min_confidence``; the downstream agent never sees
    the payload until a person lets it through. A parallel step sends the payload to
    every branch at once; a branch's answer goes to its join, under the branch's id. A
    degraded answer (a fallback's) is flagged on the handoff, a parallel step's too.
    """
    if plan.fans_out:
        fanned = _stepped(plan, usage)
        if degraded:  # kept in the run's state too, as a sequential step's is (its trace)
            fanned["_handoff"] = _handed(plan, "+".join(plan.fans_out), payload, degraded)
        return Command(
            goto=[
                Send(branch, {"_handoff": _handed(plan, branch, payload, degraded)})
                for branch in plan.fans_out
            ],
            update=fanned,
        )
    if plan.joins is not None:
        joined: TeamState = {"_joined": {plan.id: payload}, **_stepped(plan, usage)}
        if degraded:  # the answer goes on in ``_joined``; its flag on a handoff beside it
            joined["_handoff"] = _handed(plan, plan.joins, payload, degraded)
        return Command(goto=plan.joins, update=joined)
    edge = route(plan, payload)
    reason = None if reviewed else review_reason(plan, edge, payload)
    if reason is not None:
        request = ReviewRequest(
            kind=reason[0],
            source=plan.id,
            target=edge.to,
            schema=plan.out_name,
            payload=payload,
            reason=reason[1],
        )
        if isinstance(edge.review, ReviewPolicy):
            request["timeout_seconds"] = edge.review.timeout_seconds
            request["on_timeout"] = edge.review.on_timeout
        return Command(goto=REVIEW, update={"_review": request, **_stepped(plan, usage)})
    target = GRAPH_END if edge.to == END else edge.to
    handoff = _handed(plan, edge.to, payload, degraded)
    update: TeamState = {"_handoff": handoff, **_stepped(plan, usage)}
    if edge.to == END:
        update["_output"] = payload
        update.update(payload)  # type: ignore[typeddict-item]  # the graph's output fields
    return Command(goto=target, update=update)


def _stepped(plan: AgentPlan, usage: Usage) -> TeamState:
    """A step's bookkeeping writes: its agent onto the path, and its usage if it used any
    (a step writing fewer channels costs less; ``_usage`` sums to the same)."""
    if usage["llm_calls"] or usage["input_tokens"] or usage["output_tokens"]:
        return {"_path": [plan.id], "_usage": usage}
    return {"_path": [plan.id]}


def _handed(plan: AgentPlan, target: str, payload: dict[str, Any], degraded: bool) -> Handoff:
    handoff = Handoff(
        source=plan.id, target=target, schema=plan.out_name, payload=payload, checked=True
    )
    if degraded:
        handoff["degraded"] = True
    return handoff
