"""Writing and deleting checkpoint rows on Postgres: pending writes with LangGraph's
upsert rules, and deleting checkpoints with the blobs no one refers to any more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from corral.workspace._pg_db import Conn

WriteRow = tuple[str, str, str, str, int, str, str, bytes | None, str]
Rows = list[WriteRow]  # (inside the saver, ``list`` names the method)
Versions = Callable[[str, bytes | None, str], dict[str, Any]]
"""Reads a stored checkpoint (type, blob, thread id) into its channel versions."""

_WRITE = (
    "INSERT INTO cp_writes VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT "
    "(thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO "
)


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


def insert_writes(conn: Conn, rows: Sequence[WriteRow]) -> None:
    """Special channels (errors, interrupts) replace; ordinary writes keep the first. One
    statement each, queued when the caller holds a pipeline."""
    replace = (
        _WRITE + "UPDATE SET channel = excluded.channel, type = excluded.type, "
        "blob = excluded.blob, task_path = excluded.task_path"
    )
    for row in rows:
        conn.execute(replace if row[4] < 0 else _WRITE + "NOTHING", row)
