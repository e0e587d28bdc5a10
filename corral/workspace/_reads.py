"""The read half of ``CorralSaver``: checkpoints with their blobs and pending writes
(those the saver still holds included), and the history an append-only channel is
rebuilt from."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    Checkpoint,
    CheckpointTuple,
    DeltaChannelHistory,
    get_checkpoint_id,
)

from corral.workspace._async import ThreadedAsync
from corral.workspace._db import ConnectionPool
from corral.workspace._encode import listing
from corral.workspace._held import Held
from corral.workspace._history import channel_history
from corral.workspace._strict import decode
from corral.workspace._tables import CHECKPOINT_COLUMNS

_BATCHED = 8
"""Checkpoints of one thread from which ``list`` reads all its blobs and writes at once."""

_Written = dict[str, list[Any]]
_Stored = tuple[dict[tuple[str, str], tuple[str, bytes | None]], _Written]


class SaverReads(ThreadedAsync):
    """Reads of the checkpointer's tables; ``CorralSaver`` adds the writes."""

    pool: ConnectionPool
    _allowed: frozenset[tuple[str, ...]]
    _held: Held

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        checkpoint_id = get_checkpoint_id(config)
        with self.pool.read() as conn:
            if checkpoint_id:
                row = conn.execute(
                    f"SELECT {CHECKPOINT_COLUMNS} FROM cp_checkpoints WHERE thread_id = ? "
                    "AND checkpoint_ns = ? AND checkpoint_id = ?",
                    (thread_id, ns, checkpoint_id),
                ).fetchone()
            else:
                row = conn.execute(
                    f"SELECT {CHECKPOINT_COLUMNS} FROM cp_checkpoints WHERE thread_id = ? "
                    "AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1",
                    (thread_id, ns),
                ).fetchone()
            return None if row is None else self._tuple(conn, row)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        tail, params, filter = listing(config, before, filter, "?")
        sql = f"SELECT {CHECKPOINT_COLUMNS} FROM cp_checkpoints" + tail
        with self.pool.read() as conn:
            rows = conn.execute(sql, params).fetchall()
            stored = self._thread(conn, rows) if not filter and limit is None else None
            found: list[CheckpointTuple] = []
            for row in rows:
                if limit is not None and len(found) >= limit:
                    break
                metadata = self._load(row[6], row[7], row[0], "metadata")
                if filter and not all(metadata.get(k) == v for k, v in filter.items()):
                    continue
                found.append(self._tuple(conn, row, metadata, stored))
        if config is None:  # across threads: newest first overall, as LangGraph's savers
            found.sort(key=lambda t: t.config["configurable"]["checkpoint_id"], reverse=True)
        yield from found

    @staticmethod
    def _thread(conn: sqlite3.Connection, rows: Sequence[Any]) -> _Stored | None:
        """Every blob and write of the one (thread, namespace) that ``rows`` (more than a
        few checkpoints) belong to, read in two queries instead of two per checkpoint."""
        if len(rows) < _BATCHED or len({(r[0], r[1]) for r in rows}) != 1:
            return None
        run = (rows[0][0], rows[0][1])
        blobs = {
            (c, v): (t, b)
            for c, v, t, b in conn.execute(
                "SELECT channel, version, type, blob FROM cp_blobs WHERE thread_id = ? "
                "AND checkpoint_ns = ?",
                run,
            )
        }
        writes: _Written = {}
        for w in conn.execute(
            "SELECT checkpoint_id, task_id, idx, channel, type, blob, task_path FROM cp_writes "
            "WHERE thread_id = ? AND checkpoint_ns = ?",
            run,
        ):
            writes.setdefault(w[0], []).append(w[1:])
        return blobs, writes

    def _tuple(
        self,
        conn: sqlite3.Connection,
        row: tuple[Any, ...],
        metadata: Any = None,
        stored: _Stored | None = None,
    ) -> CheckpointTuple:
        thread_id, ns, checkpoint_id, parent_id, type_, blob, meta_type, meta = row
        checkpoint: Checkpoint = self._load(type_, blob, thread_id, "checkpoint")
        versions = checkpoint.get("channel_versions", {})
        values: dict[str, Any] = {}
        if versions and stored is not None:
            kept = [(c, stored[0].get((c, str(v)), ("empty", None))) for c, v in versions.items()]
            values = {
                c: self._load(t, b, thread_id, f"channel {c!r}")
                for c, (t, b) in kept
                if t != "empty"
            }
        elif versions:
            pairs = list(versions.items())
            # One lookup on the whole primary key per wanted blob: a filter on (channel,
            # version) after the first two key columns would read every blob of the
            # thread, so loading grew with the run's length.
            blobs = conn.execute(
                "WITH want(channel, version) AS (VALUES "
                + ", ".join(["(?, ?)"] * len(pairs))
                + ") SELECT b.channel, b.type, b.blob FROM want CROSS JOIN cp_blobs AS b "
                "ON b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = want.channel "
                "AND b.version = want.version",
                [*(x for c, v in pairs for x in (c, str(v))), thread_id, ns],
            ).fetchall()
            values = {
                channel: self._load(t, b, thread_id, f"channel {channel!r}")
                for channel, t, b in blobs
                if t != "empty"
            }
        committed = (
            stored[1].get(checkpoint_id, [])
            if stored is not None
            else conn.execute(
                "SELECT task_id, idx, channel, type, blob, task_path FROM cp_writes WHERE "
                "thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
                (thread_id, ns, checkpoint_id),
            ).fetchall()
        )
        writes = self._held.pending(committed, (thread_id, ns), checkpoint_id)
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                }
            },
            checkpoint={**checkpoint, "channel_values": values},
            metadata=metadata
            if metadata is not None
            else self._load(meta_type, meta, thread_id, "metadata"),
            parent_config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": parent_id,
                }
            }
            if parent_id
            else None,
            pending_writes=[
                (w[0], w[2], self._load(w[3], w[4], thread_id, f"write {w[2]!r}")) for w in writes
            ],
        )

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        if not channels:
            return {}
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        with self.pool.read() as conn:
            checkpoint_id = (
                get_checkpoint_id(config)
                or conn.execute(
                    "SELECT max(checkpoint_id) FROM cp_checkpoints WHERE thread_id = ? "
                    "AND checkpoint_ns = ?",
                    (thread_id, ns),
                ).fetchone()[0]
            )
            if checkpoint_id is None:
                return {c: DeltaChannelHistory(writes=[]) for c in channels}
            return channel_history(
                conn,
                (thread_id, ns),
                checkpoint_id,
                channels,
                lambda t, b, what: self._load(t, b, thread_id, what),
            )

    def _load(self, type_: str, blob: bytes | None, thread_id: str, what: str) -> Any:
        return decode(self.serde, self._allowed, type_, blob, f"run {thread_id!r} ({what})")
