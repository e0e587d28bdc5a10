"""Guard trips as a run reports them: each cause once, with how often it tripped."""

from __future__ import annotations

from typing import Any


def distinct_trips(trips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each cause (guard, agent, limit, policy) once, as its first trip, with ``count``."""
    causes: dict[tuple[Any, ...], dict[str, Any]] = {}
    for trip in trips:
        key = (trip.get("guard"), trip.get("agent"), trip.get("limit"), trip.get("policy"))
        if key in causes:
            causes[key]["count"] += 1
        else:
            shown = {k: v for k, v in trip.items() if k not in ("kind", "at")}
            causes[key] = {**shown, "count": 1}
    return list(causes.values())
