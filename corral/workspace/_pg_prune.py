"""Writing and deleting checkpoint rows on Postgres: a step's rows in one statement, and
deleting checkpoints with the blobs no one refers to any more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from corral.workspace._pg_db import Conn

WriteRow = tuple[str, str, str, str, int, str, str, bytes | None, str]
Rows = list[WriteRow]  # (inside the saver, ``list`` names the method)
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
