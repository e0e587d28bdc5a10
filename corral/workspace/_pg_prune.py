"""Writing and deleting checkpoint rows on Postgres: a step's rows in one statement, and
deleting checkpoints with the blobs no one refers to any more; forgetting old runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from corral.workspace._encode import WriteRow
from corral.workspace._pg_db import Conn
from corral.workspace._prune import ENDED

Versions = Callable[[str, bytes | None, str], dict[str, Any]]
"""Reads a stored checkpoint (type, blob, thread id) into its channel versions."""


def delete_checkpoints(conn: Conn, doomed: Sequence[tuple[Any, ...]], versions: Versions) -> None:
    """Delete checkpoints and their writes, then the blobs left without a reader."""
    with conn.cursor() as cur:
        for table in ("cp_checkpoints", "cp_writes"):
            cur.executemany(
                f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_ns = %s AND "
                "checkpoint_id = %s".encode(),
                doomed,
            )
    for thread_id, ns in {(t, n) for t, n, _ in doomed}:
        used: set[tuple[str, str]] = set()
        for type_, blob in conn.execute(
            "SELECT type, checkpoint FROM cp_checkpoints WHERE thread_id = %s AND "
            "checkpoint_ns = %s",
            (thread_id, ns),
        ):
            used.update((c, str(v)) for c, v in versions(type_, blob, thread_id).items())
        stored = conn.execute(
            "SELECT channel, version FROM cp_blobs WHERE thread_id = %s AND checkpoint_ns = %s",
            (thread_id, ns),
        ).fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                "DELETE FROM cp_blobs WHERE thread_id = %s AND checkpoint_ns = %s AND "
                "channel = %s AND version = %s",
                [(thread_id, ns, c, v) for c, v in stored if (c, v) not in used],
            )


def save(
    conn: Conn,
    writes: Sequence[WriteRow],
    blobs: Sequence[tuple[Any, ...]] = (),
    checkpoint: tuple[Any, ...] | None = None,
) -> None:
    """Pending writes, channel blobs and a checkpoint in ONE statement (data-modifying
    ``WITH``): atomic on its own, one round trip. Special channels (errors, interrupts)
    replace; ordinary writes keep the first."""
    replace = {(r[0], r[1], r[2], r[3], r[4]): r for r in writes if r[4] < 0}  # last wins
    keep = [r for r in writes if r[4] >= 0]
    sql = (
        f"WITH keep AS (INSERT INTO cp_writes {_WRITES} ON CONFLICT DO NOTHING), "
        f"replace AS (INSERT INTO cp_writes {_WRITES} ON CONFLICT (thread_id, checkpoint_ns, "
        "checkpoint_id, task_id, idx) DO UPDATE SET channel = excluded.channel, type = "
        "excluded.type, blob = excluded.blob, task_path = excluded.task_path), "
        f"blobs AS (INSERT INTO cp_blobs {_BLOBS} ON CONFLICT (thread_id, checkpoint_ns, "
        "channel, version) DO UPDATE SET type = excluded.type, blob = excluded.blob) "
    )
    params = [*_columns(keep, 9), *_columns(list(replace.values()), 9), *_columns(blobs, 6)]
    if checkpoint is None:
        sql += "SELECT 1"
    else:
        sql += (
            "INSERT INTO cp_checkpoints VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET parent_id = "
            "excluded.parent_id, run_id = excluded.run_id, type = excluded.type, checkpoint "
            "= excluded.checkpoint, meta_type = excluded.meta_type, metadata = "
            "excluded.metadata, channels = excluded.channels, versions = excluded.versions"
        )
        params.extend(checkpoint)
    conn.execute(sql.encode(), params)


_WRITES = (
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int[], "
    "%s::text[], %s::text[], %s::bytea[], %s::text[])"
)
_BLOBS = (
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[])"
)


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as ``width`` column lists (for ``unnest``)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


TOUCHED = (
    *("runs", "usage", "usage_totals", "task_grants", "events", "audit", "tasks", "tool_calls"),
    "model_replies",
    *("cp_checkpoints", "cp_blobs", "cp_writes"),
)
"""The tables a prune deletes from (``VACUUM``-ed after it)."""


def size(conn: Conn) -> int:
    """Bytes on disk of the tables a prune touches (indexes and TOAST included)."""
    row = conn.execute(
        "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) AS t",
        (list(TOUCHED),),
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def vacuum(conn: Conn) -> bool:
    """``VACUUM`` the tables a prune touches (``conn`` autocommits: it cannot run in a
    transaction), so Postgres reuses the deleted rows' space and gives back the empty
    pages at a table's end. False if another session's lock held it past 10 seconds."""
    conn.execute("SET lock_timeout = '10s'")
    try:
        conn.execute(f"VACUUM {', '.join(TOUCHED)}".encode())
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        conn.execute("RESET lock_timeout")
    return True


def ended_before(conn: Conn, cutoff: str) -> list[str]:
    """Ended runs last updated before ``cutoff`` (ISO 8601, UTC), locked until the
    transaction ends (a run taken over meanwhile waits, then finds no record): walks the
    ``started_at`` index (a run starts before it is last updated)."""
    found = conn.execute(
        "SELECT run_id FROM runs WHERE started_at < %s AND updated_at < %s AND "
        "status = ANY(%s) FOR UPDATE",
        (cutoff, cutoff, list(ENDED)),
    )
    return [str(r[0]) for r in found]


def forget_runs(conn: Conn, run_ids: Sequence[str]) -> None:
    """Delete what the workspace keeps about each run besides its checkpoints: its
    record (with its team definition), calls, events, audit rows, tasks, tool calls,
    and the running totals and grants of its run and its tasks. The day totals of
    agents and the team stay, so budgets and ``corral budget`` of past days add up."""
    ids = list(run_ids)
    keys = [
        str(r[0])
        for r in conn.execute("SELECT DISTINCT task_key FROM usage WHERE run_id = ANY(%s)", (ids,))
    ]
    conn.execute("DELETE FROM usage_totals WHERE scope = 'task' AND key = ANY(%s)", (keys,))
    conn.execute(
        "DELETE FROM task_grants WHERE task_key = ANY(%s) OR parent = ANY(%s)", (keys,) * 2
    )
    conn.execute("DELETE FROM usage_totals WHERE scope = 'run' AND key = ANY(%s)", (ids,))
    for table in ("usage", "events", "audit", "tasks", "tool_calls", "model_replies", "runs"):
        conn.execute(f"DELETE FROM {table} WHERE run_id = ANY(%s)".encode(), (ids,))
