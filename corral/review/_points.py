"""Where work stops for a person: review points on edges, low confidence, escalations,
and tool calls that require review."""

from __future__ import annotations

from typing import Any

from langgraph.types import interrupt

from corral.manifest import AgentPlan, EdgeSpec


def review_reason(
    plan: AgentPlan, edge: EdgeSpec, payload: dict[str, Any]
) -> tuple[str, str] | None:
    """(kind, reason) if this payload must wait for a person before going along ``edge``."""
    for field, floor in (
        (edge.confidence_field, edge.min_confidence),
        (plan.spec.confidence_field, plan.spec.min_confidence),
    ):
        if floor is not None and float(payload.get(field, 0.0)) < floor:
            return "confidence", (
                f"{plan.id!r} is {payload.get(field)} confident "
                f"({field}), below the {floor} required"
            )
    if edge.review:
        return "edge", f"the edge {plan.id} -> {edge.to} is a review point"
    return None


def ask_person(request: dict[str, Any]) -> dict[str, Any]:
    """Pause the run with ``request`` (kind, source, target, schema, payload, reason) until a
    person decides; return the decision (``action``: approve, reject or edit)."""
    decision: dict[str, Any] = interrupt(request)
    return decision
