"""The ledger's running totals: what each call moves, and what the reports read.

``usage_totals`` holds one row per scope: a task, a run, an agent's day and the team's
(reservations included: the budget checks read these), and ``spent``, an agent's day of
settled calls only (tokens, cost, calls, calls of unknown cost): ``corral budget`` reads
those few rows instead of summing every call of the day.

The statements are the same on every backend; ``p`` is the backend's placeholder
(``?`` or ``%s``) and ``conn`` its connection in a transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from corral.workspace._budget import run_usage
from corral.workspace._types import TEAM, RunUsage

Scope = tuple[str, str, str]


def scopes(run_id: str, task_key: str, agent: str, day: str) -> tuple[Scope, ...]:
    """The running totals one call moves: its task, its agent's day, the team's, its run."""
    return (("task", task_key, ""), ("agent", agent, day), ("team", TEAM, day), ("run", run_id, ""))


def many(conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """``executemany`` on either backend's connection (psycopg's is on its cursors)."""
    cursor = conn.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def totals(conn: Any, p: str, scope: str, key: str, day: str) -> tuple[int, float, int]:
    """Tokens, cost and calls so far (reservations included) of one scope."""
    row = conn.execute(
        f"SELECT tokens, cost, calls FROM usage_totals WHERE scope = {p} AND key = {p} "
        f"AND day = {p}",
        (scope, key, day),
    ).fetchone()
    return (int(row[0]), float(row[1]), int(row[2])) if row else (0, 0.0, 0)


def add(
    conn: Any,
    p: str,
    moved: Sequence[Scope],
    tokens: int,
    cost: float,
    *,
    calls: int,
    spent: tuple[str, str, int, float, bool] | None = None,
) -> None:
    """Move the running totals of every scope by the same amounts (``calls``: 1 for a new
    call), and with ``spent`` (agent, day, tokens, cost, cost known), that agent's day of
    settled calls by one call."""
    rows: list[tuple[str, str, str, int, float, int, int]] = [
        (*scope, tokens, cost, calls, 0) for scope in moved
    ]
    if spent is not None:
        agent, day, used, paid, known = spent
        rows.append(("spent", agent, day, used, paid, 1, int(not known)))
    many(
        conn,
        "INSERT INTO usage_totals (scope, key, day, tokens, cost, calls, unknown) VALUES "
        f"({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (scope, key, day) DO UPDATE SET "
        "tokens = usage_totals.tokens + excluded.tokens, "
        "cost = usage_totals.cost + excluded.cost, "
        "calls = usage_totals.calls + excluded.calls, "
        "unknown = COALESCE(usage_totals.unknown, 0) + excluded.unknown",
        rows,
    )


OLD_INDEXES = ("idx_usage_agent_day", "idx_usage_day", "idx_usage_task_key")
"""Indexes of ``usage`` nothing reads any more (each made every call's row dearer)."""


TOTALS = (
    "CREATE TABLE {name} (scope TEXT, key TEXT, day TEXT, tokens INTEGER, cost REAL, "
    "calls INTEGER, unknown INTEGER, PRIMARY KEY (scope, key, day)) WITHOUT ROWID"
)
"""One B-tree keyed by scope, key and day (a rowid table kept a second one for the key,
and every call's transaction wrote both)."""


def outdated(conn: sqlite3.Connection) -> bool:
    """Whether ``upgrade`` has anything to do: no totals table yet, one made by an older
    version (no ``spent`` totals, or a rowid table), or the unread indexes."""
    made = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'usage_totals'").fetchone()
    marks = ", ".join("?" * len(OLD_INDEXES))
    old = conn.execute(f"SELECT 1 FROM sqlite_master WHERE name IN ({marks})", OLD_INDEXES)
    return made is None or "WITHOUT ROWID" not in made[0] or old.fetchone() is not None


def upgrade(conn: sqlite3.Connection) -> None:
    """Make the totals table, or bring an older one up to date: add ``spent`` totals
    filled from the settled calls, rebuild it without rowids, and drop the unread
    indexes (in the caller's transaction, so all or nothing; idempotent)."""
    made = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'usage_totals'").fetchone()
    if made is None:
        conn.execute(TOTALS.format(name="usage_totals"))
    elif "WITHOUT ROWID" not in made[0]:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(usage_totals)")}
        spent = "unknown" in columns
        conn.execute(TOTALS.format(name="usage_totals_new"))
        conn.execute(
            "INSERT INTO usage_totals_new SELECT scope, key, day, tokens, cost, calls, "
            f"{'unknown' if spent else '0'} FROM usage_totals"
        )
        conn.execute("DROP TABLE usage_totals")
        conn.execute("ALTER TABLE usage_totals_new RENAME TO usage_totals")
        if not spent:
            conn.execute(
                "INSERT INTO usage_totals (scope, key, day, tokens, cost, calls, unknown) "
                "SELECT 'spent', agent, day, SUM(input_tokens + output_tokens), "
                "SUM(cost_usd), count(*), SUM(1 - cost_known) FROM usage "
                "WHERE status = 'settled' GROUP BY agent, day"
            )
    for index in OLD_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {index}")


def spent_on(conn: Any, p: str, day: str) -> list[tuple[str, int, float, int, int]]:
    """Per agent: tokens, cost, calls of unknown cost and calls settled on ``day``."""
    rows = conn.execute(
        "SELECT key, tokens, cost, COALESCE(unknown, 0), calls FROM usage_totals "
        f"WHERE scope = 'spent' AND day = {p} ORDER BY key",
        (day,),
    ).fetchall()
    return [(str(a), int(t), float(c), int(u), int(n)) for a, t, c, u, n in rows]


def usage_by_run(conn: Any, p: str, run_ids: list[str]) -> dict[str, RunUsage]:
    """The account of each run that made a settled call (indexed reads, 500 runs each)."""
    found: dict[str, RunUsage] = {}
    for start in range(0, len(run_ids), 500):
        some = run_ids[start : start + 500]
        rows = conn.execute(
            "SELECT run_id, SUM(input_tokens), SUM(output_tokens), count(*), SUM(cost_usd), "
            f"SUM(1 - cost_known) FROM usage WHERE run_id IN ({', '.join([p] * len(some))}) "
            "AND status = 'settled' GROUP BY run_id",
            some,
        ).fetchall()
        for run_id, tokens_in, tokens_out, calls, cost, unknown in rows:
            found[run_id] = run_usage(tokens_in, tokens_out, calls, cost, unknown)
    return found
