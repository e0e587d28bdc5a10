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

from corral.workspace._budget import Ask, split


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
    grants = split(
        agent=agent,
        parent=parent,
        limit=limit,
        used=used,
        asks=asks,
        granted=lambda key: granted(conn, key),
    )
    if not grants:
        return {}
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
