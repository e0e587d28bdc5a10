"""Grants: a subtask's share of its supervisor's remaining task budget.

A round's grants are carved in one transaction: the supervisor's task limit (its own
``task_tokens``, or the grant it runs on, whichever is smaller) less what its task has
used and reserved, shared among the round's subtasks (explicit ``share`` or ``tokens``
first, equal shares of the rest). The grants count as reserved on the supervisor's task
until the round joins; then each is replaced by what its subtask really spent. A
subtask's calls are checked against its grant, and its own subtasks are carved from it,
so a subtree never spends more than its root's task budget.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from corral.errors import BudgetExceeded

Ask = tuple[str, float | None, int | None]
"""A subtask's task key, and the ``share`` or ``tokens`` it asks for (neither: equal)."""


def granted(conn: sqlite3.Connection, task_key: str) -> int | None:
    """The tokens ``task_key`` runs on, if it runs on a grant."""
    row = conn.execute("SELECT tokens FROM task_grants WHERE task_key = ?", (task_key,)).fetchone()
    return None if row is None else int(row[0])


def carve(
    conn: sqlite3.Connection,
    *,
    agent: str,
    parent: str,
    limit: int | None,
    used: int,
    asks: Sequence[Ask],
) -> dict[str, int]:
    """Grants for ``asks`` out of ``parent``'s remaining budget (none if it has no limit)."""
    own = granted(conn, parent)
    caps = [c for c in (limit, own) if c is not None]
    fresh = [a for a in asks if granted(conn, a[0]) is None]  # a resumed round keeps its grants
    if not caps or not fresh:
        return {}
    cap = min(caps)
    left = cap - used
    fixed = {
        key: tokens or int((share or 0) * left) for key, share, tokens in fresh if share or tokens
    }
    rest = [key for key, share, tokens in fresh if not (share or tokens)]
    free = left - sum(fixed.values())
    each = free // len(rest) if rest else 0
    if left <= 0 or free < 0 or (rest and each <= 0) or any(v <= 0 for v in fixed.values()):
        raise BudgetExceeded(
            agent=agent,
            layer="task_tokens (grants to subtasks)",
            limit=cap,
            used=used,
            requested=max(sum(fixed.values()), 1) + (len(rest) if rest else 0),
        )
    grants = fixed | dict.fromkeys(rest, each)
    conn.executemany(
        "INSERT INTO task_grants (task_key, parent, tokens, settled) VALUES (?, ?, ?, 0)",
        [(key, parent, tokens) for key, tokens in grants.items()],
    )
    _move(conn, parent, sum(grants.values()))
    return grants


def give_back(conn: sqlite3.Connection, parent: str, children: Sequence[str]) -> None:
    """Replace each child's grant, reserved on ``parent``, with what the child spent."""
    for child in children:
        row = conn.execute(
            "UPDATE task_grants SET settled = 1 WHERE task_key = ? AND parent = ? "
            "AND settled = 0 RETURNING tokens",
            (child, parent),
        ).fetchone()
        if row is None:
            continue
        spent = conn.execute(
            "SELECT COALESCE(SUM(tokens), 0) FROM usage_totals WHERE scope = 'task' AND key = ?",
            (child,),
        ).fetchone()[0]
        _move(conn, parent, int(spent) - int(row[0]))


def _move(conn: sqlite3.Connection, task_key: str, tokens: int) -> None:
    conn.execute(
        "INSERT INTO usage_totals (scope, key, day, tokens, cost, calls) "
        "VALUES ('task', ?, '', ?, 0, 0) ON CONFLICT (scope, key, day) "
        "DO UPDATE SET tokens = tokens + excluded.tokens",
        (task_key, tokens),
    )
