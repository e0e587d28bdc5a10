"""The task board's rules, the same on every backend (pure: no SQL, no locking).

What a new or refused task's row holds (impact and modifier clamped), the workspace
guards on creation (cooldown, creation rate, pending tasks) and their order, the
compare-and-set claim's outcome, what finishing a task records, and a row's ``Task``.
Each backend reads and writes its own SQL around these, under its own lock
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock and row locks on Postgres).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from corral.errors import GuardTripped
from corral.workspace._types import Limits, NewTask, Task, TaskStatus

MODIFIER_LIMIT = 50.0
PRIORITY_CAP = 1000.0
IMPACT_CAP = 500.0
RANK = "blocked * 100 + impact + modifier - created_at / 6.0"
"""Score now, less its age term: blocked dependents weigh most, then declared impact,
then age (10 points a minute), then the clamped model modifier. The age term is linear
in created_at, so the queue order is a static, indexable rank."""

COLUMNS = (
    "id, run_id, parent_id, assignee, depth, status, instruction, payload, result, error, "
    "claimer, lease_until, created_at, attempts"
)
"""The columns ``task`` reads, in its order."""


def new_row(t: NewTask, now: float) -> tuple[Any, ...]:
    """A pending task's values: id, run, parent, assignee, depth, instruction, payload,
    impact (0 to 500), modifier (+-50), blocked (>= 0), created at."""
    impact = max(0.0, min(t.impact, IMPACT_CAP))
    modifier = max(-MODIFIER_LIMIT, min(t.modifier, MODIFIER_LIMIT))
    fields = (t.id, t.run_id, t.parent_id, t.assignee, t.depth, t.instruction)
    return (*fields, json.dumps(t.payload), impact, modifier, max(0, t.blocked), now)


def refused_row(t: NewTask, reason: str, now: float) -> tuple[Any, ...]:
    """A refused delegation's values: id, run, parent, assignee, depth, instruction,
    payload, reason, created at."""
    fields = (t.id, t.run_id, t.parent_id, t.assignee, t.depth, t.instruction)
    return (*fields, json.dumps(t.payload), reason, now)


def guard(
    limits: Limits,
    adding: int,
    now: float,
    *,
    cooldown: float | None,
    recent: Callable[[float], int],
    pending: Callable[[], int],
) -> None:
    """Raise ``GuardTripped`` if creating ``adding`` tasks now passes a workspace guard:
    a cooldown in force (ending at ``cooldown``), the creation rate (``recent`` counts
    the tasks created since a time), the pending tasks (``pending`` counts them)."""
    if cooldown is not None and cooldown > now:
        raise GuardTripped(
            "cooldown",
            limit=limits.cooldown_seconds,
            seen=round(cooldown - now, 1),
            until=cooldown,
            message=f"task creation is cooling down for {cooldown - now:.0f} "
            "more seconds after the creation rate was reached",
        )
    if limits.rate_count is not None:
        made = recent(now - limits.rate_seconds)
        if made + adding > limits.rate_count:
            until = now + limits.cooldown_seconds
            raise GuardTripped(
                "task_rate",
                limit=limits.rate_count,
                seen=made + adding,
                until=until if limits.cooldown_seconds else None,
                message=f"{made} tasks were created in the last {limits.rate_seconds:.0f} s "
                f"and {adding} more would pass the limit of {limits.rate_count}",
            )
    if limits.max_pending is not None:
        waiting = pending()
        if waiting + adding > limits.max_pending:
            raise GuardTripped(
                "max_pending_tasks",
                limit=limits.max_pending,
                seen=waiting + adding,
                message=f"{waiting} tasks are pending in the workspace and {adding} more "
                f"would pass the limit of {limits.max_pending}",
            )


def take(claimer: str, now: float, lease_seconds: float, task_id: str) -> tuple[Any, ...]:
    """The values of a compare-and-set claim: claimer, claimed at, lease until, id, and
    the expiry and claimer its condition compares with."""
    return (claimer, now, now + lease_seconds, task_id, now, claimer)


def held(task: Task | None, claimer: str, *, took: bool) -> Task | None:
    """A claim's answer: the task if ``claimer`` holds it now (``took``: its
    compare-and-set took) or it is done (its result is to be used), else ``None``."""
    if task is None:
        return None
    if task.status == "done" or (took and task.status == "claimed" and task.claimer == claimer):
        return task
    return None


def outcome(status: TaskStatus, value: Any) -> tuple[str | None, str | None]:
    """What finishing a task records: its result (JSON) if done, its error if failed."""
    return (json.dumps(value), None) if status == "done" else (None, str(value))


def cooling(value: float | None, now: float) -> float | None:
    """When the creation cooldown ends, if one is in force at ``now``."""
    return float(value) if value is not None and value > now else None


def task(row: Sequence[Any]) -> Task:
    """A ``tasks`` row (the ``COLUMNS``) as a ``Task``."""
    task_id, run_id, parent_id, assignee, depth, status, instruction = row[:7]
    claimer, lease_until, created_at, attempts = row[10:14]
    return Task(
        task_id,
        run_id,
        parent_id,
        assignee,
        depth,
        status,
        instruction,
        json.loads(row[7]),
        json.loads(row[8]) if row[8] else None,
        row[9],
        claimer,
        lease_until,
        created_at,
        attempts,
    )
