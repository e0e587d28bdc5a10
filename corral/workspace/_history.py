"""What an append-only channel (LangGraph's ``DeltaChannel``) is rebuilt from: the writes
along a checkpoint's ancestors back to the nearest one that stored the channel whole.

LangGraph's default walks the ancestors one ``get_tuple`` at a time, decoding every
channel of each. Here the chain comes from one recursive query per batch of ancestors,
only the channel versions of each are read (msgpack without constructing anything), and
the writes of the whole walk come from one query per batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ormsgpack
from langgraph.checkpoint.base import DeltaChannelHistory, PendingWrite, writes_sort_key

BATCH = 256
"""Ancestors read per query."""

Load = Callable[[str, bytes | None, str], Any]
"""Decodes one stored value strictly: (type, blob, what it is)."""


def channel_history(
    conn: sqlite3.Connection,
    run: tuple[str, str],
    checkpoint_id: str,
    channels: Sequence[str],
    load: Load,
) -> dict[str, DeltaChannelHistory]:
    """``BaseCheckpointSaver.get_delta_channel_history`` for one checkpoint: per channel,
    the writes of its ancestors (oldest first; its own writes excluded) back to the
    nearest ancestor holding a stored value (``seed``), or to the root. ``run`` is the
    checkpoint's (thread id, namespace)."""
    thread_id, ns = run
    remaining = set(channels)
    walked: list[str] = []  # newest first; every ancestor whose writes are wanted
    wanted: dict[str, int] = {}  # channel -> how many of ``walked`` contribute to it
    seeds: dict[str, Any] = {}
    row = conn.execute(
        "SELECT parent_id FROM cp_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
        "AND checkpoint_id = ?",
        (thread_id, ns, checkpoint_id),
    ).fetchone()
    cursor: str | None = row[0] if row else None
    while cursor is not None and remaining:
        chain = [(a, p, _versions(t, b)) for a, p, t, b in _ancestors(conn, thread_id, ns, cursor)]
        stored = _stored(
            conn, thread_id, ns, {(c, str(v[c])) for *_, v in chain for c in remaining if c in v}
        )
        cursor = None
        for ancestor, parent, versions in chain:
            walked.append(ancestor)
            for channel in list(remaining):
                wanted[channel] = len(walked)
                found = stored.get((channel, str(versions.get(channel))))
                if found is not None:
                    seeds[channel] = load(found[0], found[1], f"channel {channel!r}")
                    remaining.discard(channel)
            if not remaining:
                break
            cursor = parent
    writes = _writes(conn, run, walked, channels, load)
    result: dict[str, DeltaChannelHistory] = {}
    for channel in channels:
        mine = set(walked[: wanted.get(channel, 0)])
        entry = DeltaChannelHistory(
            writes=[w for cid, w in writes if w[1] == channel and cid in mine]
        )
        if channel in seeds:
            entry["seed"] = seeds[channel]
        result[channel] = entry
    return result


def _ancestors(
    conn: sqlite3.Connection, thread_id: str, ns: str, first: str
) -> list[tuple[str, str | None, str, bytes]]:
    """Up to ``BATCH`` checkpoints from ``first`` along the parent chain, newest first."""
    rows = conn.execute(
        "WITH RECURSIVE chain(id, parent, type, checkpoint, n) AS ("
        "SELECT checkpoint_id, parent_id, type, checkpoint, 1 FROM cp_checkpoints "
        "WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3 "
        "UNION ALL SELECT c.checkpoint_id, c.parent_id, c.type, c.checkpoint, chain.n + 1 "
        "FROM chain JOIN cp_checkpoints AS c ON c.thread_id = ?1 AND c.checkpoint_ns = ?2 "
        "AND c.checkpoint_id = chain.parent WHERE chain.n < ?4) "
        "SELECT id, parent, type, checkpoint FROM chain ORDER BY n",
        (thread_id, ns, first, BATCH),
    ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def _stored(
    conn: sqlite3.Connection, thread_id: str, ns: str, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, bytes | None]]:
    """The stored (not empty) values among ``pairs`` of (channel, version)."""
    if not pairs:
        return {}
    listed = [x for pair in pairs for x in pair]
    rows = conn.execute(
        "WITH want(channel, version) AS (VALUES " + ", ".join(["(?, ?)"] * len(pairs)) + ") "
        "SELECT b.channel, b.version, b.type, b.blob FROM want CROSS JOIN cp_blobs AS b "
        "ON b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = want.channel "
        "AND b.version = want.version WHERE b.type != 'empty'",
        [*listed, thread_id, ns],
    ).fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def _versions(type_: str, blob: bytes) -> Mapping[str, Any]:
    """A stored checkpoint's channel versions. Extension types are left as raw data,
    never constructed, so no allowlist check is needed for this read."""
    if type_ != "msgpack":
        return {}
    checkpoint = ormsgpack.unpackb(blob, option=ormsgpack.OPT_NON_STR_KEYS)
    versions = checkpoint.get("channel_versions") if isinstance(checkpoint, dict) else None
    return versions if isinstance(versions, dict) else {}


def _writes(
    conn: sqlite3.Connection,
    run: tuple[str, str],
    walked: list[str],
    channels: Sequence[str],
    load: Load,
) -> list[tuple[str, PendingWrite]]:
    """The writes to ``channels`` stored at the ``walked`` checkpoints, oldest first, each
    checkpoint's in the order LangGraph applies them."""
    thread_id, ns = run
    found: list[tuple[str, str, str, int, str, str, bytes | None]] = []
    marks = ", ".join("?" * len(channels))
    for start in range(0, len(walked), BATCH):
        ids = walked[start : start + BATCH]
        found += conn.execute(
            "WITH want(id) AS (VALUES " + ", ".join(["(?)"] * len(ids)) + ") "
            "SELECT w.checkpoint_id, w.task_path, w.task_id, w.idx, w.channel, w.type, w.blob "
            "FROM want CROSS JOIN cp_writes AS w ON w.thread_id = ? AND w.checkpoint_ns = ? "
            f"AND w.checkpoint_id = want.id WHERE w.channel IN ({marks})",
            [*ids, thread_id, ns, *channels],
        ).fetchall()
    found.sort(key=lambda w: (w[0], writes_sort_key(w[1], w[2], w[3])))
    return [(w[0], (w[2], w[4], load(w[5], w[6], f"write {w[4]!r}"))) for w in found]
