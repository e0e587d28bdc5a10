"""Guards checked before work exists: model calls per task, delegation depth and width,
the run's deadline, and repeats (the same call again and again) within a task."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from corral.errors import DeadlinePassed, GuardTripped, LoopDetected

Deadline = tuple[float, float]
"""When a run's deadline ends (by the App's clock) and how many seconds it allows."""


def deadline_trip(
    deadline: Deadline | None, now: float, *, agent: str | None, doing: str
) -> DeadlinePassed | None:
    """A trip if ``now`` is at or past the run's deadline."""
    if deadline is None or now < deadline[0]:
        return None
    at, seconds = deadline
    return DeadlinePassed(seconds=seconds, ran=seconds + now - at, agent=agent, doing=doing)


def time_left(deadline: Deadline | None, now: float) -> float | None:
    """Seconds until the deadline (never negative); ``None`` with no deadline."""
    return None if deadline is None else max(0.0, deadline[0] - now)


def repeat_trip(
    agent: str, seen: MutableMapping[str, int], what: str, args: Any, cap: int | None
) -> LoopDetected | None:
    """Count one more ``what`` with ``args`` in a task (``seen``); a trip past ``cap``."""
    if cap is None:
        return None
    key = f"{what} with {json.dumps(args, sort_keys=True, default=str)}"
    seen[key] = count = seen.get(key, 0) + 1
    if count <= cap:
        return None
    return LoopDetected(agent=agent, repeated=key[:300], limit=cap, seen=count)


def calls_trip(agent: str, made: int, cap: int) -> GuardTripped | None:
    """A trip if ``agent`` would make more than ``cap`` model calls for one task."""
    if made < cap:
        return None
    return GuardTripped(
        "max_llm_calls_per_task",
        limit=cap,
        seen=made + 1,
        agent=agent,
        message=f"agent {agent!r} would make model call {made + 1} for one task",
    )


def delegation_trip(
    agent: str, *, count: int, depth: int, max_subtasks: int, max_depth: int
) -> GuardTripped | None:
    """A trip if a delegation of ``count`` subtasks at ``depth`` passes a limit."""
    if count > max_subtasks:
        return GuardTripped(
            "max_subtasks",
            limit=max_subtasks,
            seen=count,
            agent=agent,
            message=f"{agent!r} handed out {count} subtasks at once; at most "
            f"{max_subtasks} are allowed",
        )
    if depth > max_depth:
        return GuardTripped(
            "max_delegation_depth",
            limit=max_depth,
            seen=depth,
            agent=agent,
            message=f"a subtask of {agent!r} would be at depth {depth}; the limit is {max_depth}",
        )
    return None
