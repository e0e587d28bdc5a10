"""Guards checked before work exists: model calls per task, delegation depth and width."""

from __future__ import annotations

from corral.errors import GuardTripped


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
