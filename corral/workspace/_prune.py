"""Deleting checkpoints of a run: the rows, their writes, and blobs no one refers to."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

Versions = Callable[[str, bytes | None, str], dict[str, Any]]
"""Reads a stored checkpoint (type, blob, thread id) into its channel versions."""


def keep_newest(
    conn: sqlite3.Connection, thread_ids: Sequence[str], keep: int, versions: Versions
) -> int:
    """Keep the newest ``keep`` checkpoints per run and namespace; return how many went."""
    removed = 0
    for thread_id in thread_ids:
        rows = conn.execute(
            "SELECT thread_id, checkpoint_ns, checkpoint_id FROM cp_checkpoints "
            "WHERE thread_id = ? ORDER BY checkpoint_ns, checkpoint_id DESC",
            (thread_id,),
        ).fetchall()
        seen: dict[str, int] = {}
        doomed = []
        for row in rows:
            seen[row[1]] = seen.get(row[1], 0) + 1
            if seen[row[1]] > keep:
                doomed.append(row)
        removed += len(doomed)
        delete_checkpoints(conn, doomed, versions)
    return removed


def delete_checkpoints(
    conn: sqlite3.Connection, doomed: Sequence[tuple[str, str, str]], versions: Versions
) -> None:
    """Delete checkpoints and their writes, then the blobs left without a reader."""
    conn.executemany(
        "DELETE FROM cp_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
        "AND checkpoint_id = ?",
        doomed,
    )
    conn.executemany(
        "DELETE FROM cp_writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
        doomed,
    )
    for thread_id, ns in {(t, n) for t, n, _ in doomed}:
        _collect_blobs(conn, thread_id, ns, versions)


def _collect_blobs(conn: sqlite3.Connection, thread_id: str, ns: str, versions: Versions) -> None:
    """Delete the blobs of a run's namespace that no remaining checkpoint refers to."""
    used: set[tuple[str, str]] = set()
    for type_, blob in conn.execute(
        "SELECT type, checkpoint FROM cp_checkpoints WHERE thread_id = ? AND checkpoint_ns = ?",
        (thread_id, ns),
    ):
        used.update((c, str(v)) for c, v in versions(type_, blob, thread_id).items())
    stored = conn.execute(
        "SELECT channel, version FROM cp_blobs WHERE thread_id = ? AND checkpoint_ns = ?",
        (thread_id, ns),
    ).fetchall()
    conn.executemany(
        "DELETE FROM cp_blobs WHERE thread_id = ? AND checkpoint_ns = ? AND "
        "channel = ? AND version = ?",
        [(thread_id, ns, c, v) for c, v in stored if (c, v) not in used],
    )


ENDED = ("completed", "failed", "halted", "cancelled")
"""Runs that will not go on (a paused run waits for a person; a running one runs)."""


def ended_before(conn: sqlite3.Connection, cutoff: str) -> list[str]:
    """Ended runs last updated before ``cutoff`` (ISO 8601, UTC): walks the
    ``started_at`` index (a run starts before it is last updated)."""
    rows = conn.execute(
        "SELECT run_id FROM runs WHERE started_at < ? AND updated_at < ? "
        f"AND status IN ({', '.join('?' * len(ENDED))})",
        (cutoff, cutoff, *ENDED),
    )
    return [str(r[0]) for r in rows]


def forget_runs(conn: sqlite3.Connection, run_ids: Sequence[str]) -> None:
    """Delete what the workspace keeps about each run besides its checkpoints: its
    record, calls, events, audit rows, tasks, tool calls, and the running totals and
    grants of its run and its tasks. The day totals of agents and the team stay, so
    budgets and ``corral budget`` of past days still add up."""
    for start in range(0, len(run_ids), 400):
        some = list(run_ids[start : start + 400])
        marks = ", ".join("?" * len(some))
        keys = [
            str(r[0])
            for r in conn.execute(
                f"SELECT DISTINCT task_key FROM usage WHERE run_id IN ({marks})", some
            )
        ]
        for begin in range(0, len(keys), 400):
            part = keys[begin : begin + 400]
            held = ", ".join("?" * len(part))
            conn.execute(f"DELETE FROM usage_totals WHERE scope = 'task' AND key IN ({held})", part)
            conn.execute(
                f"DELETE FROM task_grants WHERE task_key IN ({held}) OR parent IN ({held})",
                part + part,
            )
        conn.execute(f"DELETE FROM usage_totals WHERE scope = 'run' AND key IN ({marks})", some)
        for table in ("usage", "events", "audit", "tasks", "tool_calls", "model_replies", "runs"):
            conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", some)
    conn.execute(  # team definitions no run is pinned to any more
        "DELETE FROM definitions WHERE fingerprint NOT IN "
        "(SELECT fingerprint FROM runs WHERE fingerprint IS NOT NULL)"
    )
