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

from collections.abc import Sequence
from typing import Any

from corral.workspace._account import many, totals
from corral.workspace._budget import Ask, split


def granted(conn: Any, p: str, task_key: str) -> int | None:
    """The tokens ``task_key`` runs on, if it runs on a grant (``p``: the placeholder)."""
    sql = f"SELECT tokens FROM task_grants WHERE task_key = {p}"
    row = conn.execute(sql, (task_key,)).fetchone()
    return None if row is None else int(row[0])


def carve(
    conn: Any,
    p: str,
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
        granted=lambda key: granted(conn, p, key),
    )
    if not grants:
        return {}
    many(
        conn,
        f"INSERT INTO task_grants (task_key, parent, tokens, settled) VALUES ({p}, {p}, {p}, 0)",
        [(key, parent, tokens) for key, tokens in grants.items()],
    )
    _move(conn, p, parent, sum(grants.values()))
    return grants


def give_back(conn: Any, p: str, parent: str, children: Sequence[str]) -> None:
    """Replace each child's grant, reserved on ``parent``, with what the child spent."""
    for child in children:
        row = conn.execute(
            f"UPDATE task_grants SET settled = 1 WHERE task_key = {p} AND parent = {p} "
            "AND settled = 0 RETURNING tokens",
            (child, parent),
        ).fetchone()
        if row is None:
            continue
        spent = totals(conn, p, "task", child, "")[0]
        _move(conn, p, parent, spent - int(row[0]))


def _move(conn: Any, p: str, task_key: str, tokens: int) -> None:
    conn.execute(
        "INSERT INTO usage_totals (scope, key, day, tokens, cost, calls) "
        f"VALUES ('task', {p}, '', {p}, 0, 0) ON CONFLICT (scope, key, day) "
        "DO UPDATE SET tokens = usage_totals.tokens + excluded.tokens",
        (task_key, tokens),
    )
