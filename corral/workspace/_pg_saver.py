"""``PgSaver``: ``CorralSaver``'s guarantees on Postgres.

- A superstep commits atomically: the tasks' writes against the run's head checkpoint
  are held and committed in the same transaction as the next checkpoint; writes that
  end a step without one (errors, interrupts) are committed at once.
- A channel's value is stored once per version; every value is a bound parameter.
- Blobs are decoded strictly (no pickle, msgpack types from an allowlist); a blob
  that does not decode raises ``CheckpointError`` naming the run and channel.
- Async methods run the sync ones on worker threads (the pool lends each a connection).

Why not ``langgraph-checkpoint-postgres`` underneath: its ``put_writes`` commits each
task's writes on its own (no atomic superstep) and its reads decode through the
serializer with no hook to refuse a blob naming run and channel; both would have to be
rewritten. ``benchmarks/postgres.py`` measures the two side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from corral.workspace._async import ThreadedAsync
from corral.workspace._encode import Rows, encode_step, encode_writes, listing
from corral.workspace._held import Held
from corral.workspace._pg_db import Conn, PgPool
from corral.workspace._pg_prune import delete_checkpoints, save
from corral.workspace._pg_schema import SCHEMA, refuse_newer, upgrade
from corral.workspace._strict import allowed_types, decode

# One statement reads a checkpoint with its channel values and pending writes (one
# snapshot, one round trip): the channels and versions it refers to are kept beside it.
_CHECKPOINT = (
    "SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_id, c.type, c.checkpoint, "
    "c.meta_type, c.metadata, b.channels, b.types, b.blobs, w.tasks, w.idxs, w.channels, "
    "w.types, w.blobs, w.paths FROM cp_checkpoints AS c LEFT JOIN LATERAL (SELECT "
    "array_agg(b.channel) AS channels, array_agg(b.type) AS types, array_agg(b.blob) AS blobs "
    "FROM unnest(c.channels, c.versions) AS v(channel, version) JOIN cp_blobs AS b ON "
    "b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns AND b.channel = v.channel "
    "AND b.version = v.version) AS b ON true LEFT JOIN LATERAL (SELECT array_agg(w.task_id) AS "
    "tasks, array_agg(w.idx) AS idxs, array_agg(w.channel) AS channels, array_agg(w.type) AS "
    "types, array_agg(w.blob) AS blobs, array_agg(w.task_path) AS paths FROM cp_writes AS w "
    "WHERE w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns AND "
    "w.checkpoint_id = c.checkpoint_id) AS w ON true "
)
_TABLES = {
    "cp_checkpoints": "checkpoint_ns, checkpoint_id, parent_id, run_id, type, checkpoint, "
    "meta_type, metadata, channels, versions",
    "cp_blobs": "checkpoint_ns, channel, version, type, blob",
    "cp_writes": "checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path",
}


class PgSaver(ThreadedAsync):
    """LangGraph checkpointer on a Postgres workspace; see the module docstring."""

    def __init__(
        self,
        where: str | PgPool,
        *,
        keep: int | None = None,
        allowed_msgpack_modules: Iterable[tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__(
            serde=JsonPlusSerializer(
                pickle_fallback=False, allowed_msgpack_modules=allowed_msgpack_modules
            )
        )
        if keep is not None and keep < 1:
            raise ValueError("keep must be at least 1")
        self._owns = not isinstance(where, PgPool)
        self.pool = where if isinstance(where, PgPool) else PgPool(where)
        self.keep = keep
        self._allowed = allowed_types(allowed_msgpack_modules)
        self._held = Held()
        self.pool.setup(SCHEMA, upgrade, first=partial(refuse_newer, url=self.pool.url))

    def close(self) -> None:
        """Commit any held writes (and close the pool if this saver opened it); a second
        close does nothing."""
        if self.pool.closed:
            return
        with self._writing(None):
            pass
        if self._owns:
            self.pool.close()

    # -- reads ---------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        checkpoint_id = get_checkpoint_id(config)
        with self.pool.query() as conn:
            if checkpoint_id:
                row = conn.execute(
                    _CHECKPOINT + "WHERE c.thread_id = %s AND c.checkpoint_ns = %s AND "
                    "c.checkpoint_id = %s",
                    (thread_id, ns, checkpoint_id),
                ).fetchone()
            else:
                row = conn.execute(
                    _CHECKPOINT + "WHERE c.thread_id = %s AND c.checkpoint_ns = %s "
                    "ORDER BY c.checkpoint_id DESC LIMIT 1",
                    (thread_id, ns),
                ).fetchone()
        return None if row is None else self._tuple(row)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        tail, params, filter = listing(config, before, filter, "%s", "c.")
        limited = f" LIMIT {int(limit)}" if limit is not None and not filter else ""
        sql = _CHECKPOINT + tail + limited
        found: list[CheckpointTuple] = []
        with self.pool.query() as conn:
            selected = conn.execute(sql.encode(), params).fetchall()
        for row in selected:
            if limit is not None and len(found) >= limit:
                break
            metadata = self._load(row[6], row[7], row[0], "metadata")
            if filter and not all(metadata.get(k) == v for k, v in filter.items()):
                continue
            found.append(self._tuple(row, metadata))
        if config is None:  # across threads: newest first overall, as LangGraph's savers
            found.sort(key=lambda t: t.config["configurable"]["checkpoint_id"], reverse=True)
        yield from found

    def _tuple(self, row: Sequence[Any], metadata: Any = None) -> CheckpointTuple:
        thread_id, ns, checkpoint_id, parent_id, type_, blob, meta_type, meta = row[:8]
        checkpoint: Checkpoint = self._load(type_, blob, thread_id, "checkpoint")
        values = {
            channel: self._load(t, b, thread_id, f"channel {channel!r}")
            for channel, t, b in zip(row[8] or (), row[9] or (), row[10] or (), strict=True)
            if t != "empty"
        }
        committed = list(zip(*(row[i] or () for i in range(11, 17)), strict=True))
        writes = self._held.pending(committed, (thread_id, ns), checkpoint_id)
        run = {"thread_id": thread_id, "checkpoint_ns": ns}
        return CheckpointTuple(
            config={"configurable": {**run, "checkpoint_id": checkpoint_id}},
            checkpoint={**checkpoint, "channel_values": values},
            metadata=metadata
            if metadata is not None
            else self._load(meta_type, meta, thread_id, "metadata"),
            parent_config={"configurable": {**run, "checkpoint_id": parent_id}}
            if parent_id
            else None,
            pending_writes=[
                (w[0], w[2], self._load(w[3], w[4], thread_id, f"write {w[2]!r}")) for w in writes
            ],
        )

    def _load(self, type_: str, blob: bytes | None, thread_id: str, what: str) -> Any:
        return decode(self.serde, self._allowed, type_, blob, f"run {thread_id!r} ({what})")

    def _versions(self, type_: str, blob: bytes | None, thread_id: str) -> dict[str, Any]:
        """The channel versions a stored checkpoint refers to."""
        found: dict[str, Any] = self._load(type_, blob, thread_id, "checkpoint")["channel_versions"]
        return found

    # -- writes --------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        step = encode_step(self.serde, config, checkpoint, metadata, new_versions)
        thread_id, ns = step.thread_id, step.ns
        versions = checkpoint.get("channel_versions", {})
        row = (*step.row, list(versions), [str(v) for v in versions.values()])
        run = (thread_id, ns)
        before = self._held.new_head(run, checkpoint["id"])
        held: Rows = []
        try:
            with self.pool.query() as conn:  # one statement: atomic, one round trip
                held = self._held.take(run)
                save(conn, held, step.blobs, row)
        except BaseException:
            self._held.give_back(held)
            self._held.failed_head(run, checkpoint["id"], before)
            raise
        number = step.meta.get("step")
        if self.keep is not None and isinstance(number, int) and number % self.keep == 0:
            self.keep_last([thread_id], self.keep)
        return step.config

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        rows = self._held.hold(encode_writes(self.serde, config, writes, task_id, task_path))
        if rows:
            self._commit_writes(rows)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        w = encode_writes(self.serde, config, writes, task_id, task_path)
        rows = self._held.hold(w)  # no I/O: stays on the loop
        if rows:
            await asyncio.to_thread(self._commit_writes, rows)

    def _commit_writes(self, rows: Rows) -> None:
        held: Rows = []
        try:
            with self.pool.query() as conn:  # one statement: atomic, one round trip
                held = self._held.take((rows[0][0], rows[0][1]))
                save(conn, held + rows)
        except BaseException:
            self._held.give_back(held)
            raise

    @contextmanager
    def _writing(self, run: tuple[str, str] | None) -> Iterator[Conn]:
        """A write transaction that first writes the held writes of one run namespace (or
        all); they are held again if it does not commit."""
        rows: Rows = []
        try:
            with self.pool.write() as conn:
                if rows := self._held.take(run):
                    save(conn, rows)
                yield conn
        except BaseException:
            self._held.give_back(rows)
            raise

    def release(self, thread_id: str) -> None:
        """Forget a run that ended or paused, committing anything it still holds (as
        ``CorralSaver.release``): a long-lived process keeps nothing per finished run."""
        if rows := self._held.release(str(thread_id)):
            try:
                with self.pool.query() as conn:
                    save(conn, rows)
            except BaseException:
                self._held.give_back(rows)
                raise

    def delete_thread(self, thread_id: str) -> None:
        with self.pool.write() as conn:
            self.forget(conn, [str(thread_id)])

    def forget(self, conn: Conn, thread_ids: Sequence[str]) -> None:
        """Delete the runs' checkpoints, blobs and writes (held ones too), in ``conn``'s
        transaction."""
        ids = {str(t) for t in thread_ids}
        self._held.forget(ids)
        for table in _TABLES:
            conn.execute(f"DELETE FROM {table} WHERE thread_id = ANY(%s)".encode(), (list(ids),))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        with self._writing(None) as conn:
            doomed = conn.execute(
                "SELECT thread_id, checkpoint_ns, checkpoint_id FROM cp_checkpoints "
                "WHERE run_id = ANY(%s)",
                ([str(r) for r in run_ids],),
            ).fetchall()
            delete_checkpoints(conn, doomed, self._versions)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        with self._writing(None) as conn:
            for table, columns in _TABLES.items():
                conn.execute(
                    f"INSERT INTO {table} (thread_id, {columns}) SELECT %s, {columns} FROM "
                    f"{table} WHERE thread_id = %s ON CONFLICT DO NOTHING".encode(),
                    (str(target_thread_id), str(source_thread_id)),
                )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use keep_latest or delete")
        self.keep_last(thread_ids, 1 if strategy == "keep_latest" else 0)

    def keep_last(self, thread_ids: Sequence[str], keep: int) -> int:
        """Keep the newest ``keep`` checkpoints per run and namespace; return how many
        went (with the blobs no kept checkpoint refers to)."""
        if keep < 0:
            raise ValueError("keep must be 0 or more")
        with self._writing(None) as conn:
            doomed = conn.execute(
                "SELECT thread_id, checkpoint_ns, checkpoint_id FROM (SELECT thread_id, "
                "checkpoint_ns, checkpoint_id, row_number() OVER (PARTITION BY thread_id, "
                "checkpoint_ns ORDER BY checkpoint_id DESC) AS n FROM cp_checkpoints WHERE "
                "thread_id = ANY(%s)) AS ranked WHERE n > %s",
                ([str(t) for t in thread_ids], keep),
            ).fetchall()
            delete_checkpoints(conn, doomed, self._versions)
        return len(doomed)
