"""Where work stops for a person: review points on edges, low confidence, escalations,
and tool calls that require review."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def ask_person(
    request: dict[str, Any],
    check: Callable[[Mapping[str, Any]], str | None] | None = None,
) -> dict[str, Any]:
    """Pause the run with ``request`` (kind, source, target, schema, payload, reason) until a
    person decides; return the decision (``action``: approve, reject or edit).

    A malformed decision (resumed through the graph itself: not a mapping, an unknown
    action, an edit without a valid ``payload``, ``check`` says why) is refused: the run
    pauses again with the request and ``refused`` (why), and the next resume decides. It
    is never taken for an approval, nor kept as the answer that would fail every resume.
    """
    asked = request
    while True:
        decision = interrupt(asked)
        refused = malformed(decision) or (check(decision) if check is not None else None)
        if refused is None:
            return dict(decision)
        asked = {**request, "refused": refused}


def malformed(decision: object) -> str | None:
    """Why ``decision`` is not a decision a person can give, or ``None``."""
    if not isinstance(decision, Mapping):
        return (
            f"a decision is a mapping with an action (approve, reject or edit), not "
            f"{type(decision).__name__} {str(decision)[:60]!r}"
        )
    if decision.get("action") not in ("approve", "reject", "edit"):
        return f"unknown action {decision.get('action')!r}: use approve, reject or edit"
    if decision["action"] == "edit" and not isinstance(decision.get("payload"), Mapping):
        return "an edit needs a payload: a mapping of the schema's fields"
    return None
