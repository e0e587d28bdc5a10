"""Review deadlines: when a review's time runs out, and the decision its policy makes.

A paused run holds no process, so nothing fires at the deadline: an expired review is
decided when the run is next resumed (``App.resume``, ``corral resume RUN`` or
``corral resume --expired``), by the policy the run paused with.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

DEADLINE = "deadline"
"""Who decided a review its policy decided (in events, audit rows and the decision)."""


def iso(at: float) -> str:
    """``at`` (seconds since the epoch) as an ISO 8601 UTC time."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def stamp(request: Mapping[str, Any], now: float) -> dict[str, Any]:
    """``request`` with its ``deadline`` (ISO UTC) if its policy has a timeout."""
    asked = dict(request)
    timeout = asked.get("timeout_seconds")
    if timeout is not None and "deadline" not in asked:
        asked["asked_at"] = iso(now)
        asked["deadline"] = iso(now + float(timeout))
    return asked


def overdue(request: Mapping[str, Any] | None, now: float) -> str | None:
    """The policy (``reject``, ``approve`` or ``escalate``) of a review whose deadline has
    passed at ``now``; ``None`` if it has none, has time left, or was escalated already."""
    if request is None or request.get("deadline") is None or request.get("escalated"):
        return None
    if datetime.fromisoformat(str(request["deadline"])).timestamp() > now:
        return None
    return str(request.get("on_timeout") or "reject")


def deadline_decision(request: Mapping[str, Any], policy: str) -> dict[str, Any]:
    """The resume value of an ``approve`` or ``reject`` the deadline makes."""
    return {
        "action": policy,
        "reason": f"no decision by the review deadline {request['deadline']}"
        if policy == "reject"
        else None,
        "payload": None,
        "by": DEADLINE,
    }
