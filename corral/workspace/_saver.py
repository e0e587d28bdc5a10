"""``CorralSaver``: a LangGraph checkpointer on the workspace SQLite file.

- A superstep commits atomically: the tasks' writes against the run's head checkpoint
  are held and committed in the same transaction as the next checkpoint, so a killed
  process leaves the step before or the step after, and a 1,000-branch fan-out is one
  commit, not 1,001. A checkpoint is the head from the start of its ``put``, so a
  fresh run's first writes, which arrive while its input checkpoint commits, are held
  too. Writes that end a step without a checkpoint (errors,
  interrupts) and writes to any other checkpoint are committed at once. Readers in
  this process see held writes; ``close()`` commits what is held. Held writes and each
  run's head are kept per run, so a commit never looks at other runs; ``release()``
  forgets a run that ended (``App`` calls it), and at most ``MAX_HEADS`` are remembered.
- Append-only channels (``DeltaChannel``, a run's path) are rebuilt from their writes by
  ``get_delta_channel_history`` in batched SQL along the parent chain (``_history.py``).
- A channel's value is stored once per version: unchanged channels are not rewritten.
- No SQL text is built from user values; every value is a bound parameter.
- Blobs are decoded strictly (no pickle, msgpack types from an allowlist); a blob
  that does not decode raises ``CheckpointError`` naming the run and channel.
- Async methods run the sync ones on worker threads, each with its own connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from corral.workspace._db import ConnectionPool, Synchronous
from corral.workspace._encode import Rows, encode_step, encode_writes
from corral.workspace._held import Held
from corral.workspace._prune import delete_checkpoints, keep_newest
from corral.workspace._reads import SaverReads
from corral.workspace._strict import allowed_types
from corral.workspace._tables import SCHEMA, TABLES, insert_writes


class CorralSaver(SaverReads):
    """LangGraph checkpointer on SQLite; see the module docstring."""

    def __init__(
        self,
        where: str | Path | ConnectionPool,
        *,
        synchronous: Synchronous = "NORMAL",
        keep: int | None = None,
        allowed_msgpack_modules: Iterable[tuple[str, ...]] | None = None,
    ) -> None:
        """Open (or share) a workspace file.

        Args:
            where: the SQLite file, or the ``ConnectionPool`` of an open workspace.
            synchronous: ``NORMAL`` survives process crashes; ``FULL`` also power loss.
            keep: if set, each run keeps only its newest ``keep`` checkpoints, pruned as
                it goes, so a long run does not grow the file without bound.
            allowed_msgpack_modules: extra types checkpoint blobs may contain.
        """
        super().__init__(
            serde=JsonPlusSerializer(
                pickle_fallback=False, allowed_msgpack_modules=allowed_msgpack_modules
            )
        )
        if keep is not None and keep < 1:
            raise ValueError("keep must be at least 1")
        self.pool = (
            where
            if isinstance(where, ConnectionPool)
            else ConnectionPool(Path(where), synchronous=synchronous)
        )
        self.keep = keep
        self._allowed = allowed_types(allowed_msgpack_modules)
        self._held = Held()
        with self.pool.write() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def close(self) -> None:
        """Commit any held writes, then close every connection (a second close does
        nothing)."""
        if self.pool.closed:
            return
        with self._writing(None):
            pass
        self.pool.close()

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
        run = (thread_id, ns)
        before = self._held.new_head(run, checkpoint["id"])
        held: Rows = []
        try:  # as ``_writing``, written out: a step's path, and a context manager's cost
            with self.pool.write() as conn:
                if held := self._held.take(run):
                    insert_writes(conn, held)
                conn.executemany(
                    "INSERT OR REPLACE INTO cp_blobs VALUES (?, ?, ?, ?, ?, ?)", step.blobs
                )
                conn.execute(
                    "INSERT OR REPLACE INTO cp_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    step.row,
                )
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

    def _commit_writes(self, rows: Rows) -> None:
        held: Rows = []
        try:  # as ``_writing``, written out (a step's path)
            with self.pool.write() as conn:
                held = self._held.take((rows[0][0], rows[0][1]))
                insert_writes(conn, held + rows)
        except BaseException:
            self._held.give_back(held)
            raise

    @contextmanager
    def _writing(self, run: tuple[str, str] | None) -> Iterator[sqlite3.Connection]:
        """A write transaction that first writes the held writes of one run namespace (or
        all); they are held again if it does not commit."""
        rows: Rows = []
        try:
            with self.pool.write() as conn:
                if rows := self._held.take(run):
                    insert_writes(conn, rows)
                yield conn
        except BaseException:
            self._held.give_back(rows)
            raise

    @property
    def remembered(self) -> int:
        """How many runs the saver keeps in memory (their newest checkpoint)."""
        return len(self._held)

    def release(self, thread_id: str) -> None:
        """Forget a run that ended or paused, committing anything it still holds. A run
        that goes on later (a resume) commits its first step's writes at once, then
        holds them again from its next checkpoint."""
        if rows := self._held.release(str(thread_id)):
            try:
                with self.pool.write() as conn:
                    insert_writes(conn, rows)
            except BaseException:
                self._held.give_back(rows)
                raise

    def delete_thread(self, thread_id: str) -> None:
        with self.pool.write() as conn:
            self.delete_threads(conn, [str(thread_id)])

    def delete_threads(self, conn: sqlite3.Connection, thread_ids: Sequence[str]) -> None:
        """Delete these runs' checkpoints in ``conn``'s write transaction (the caller's:
        a prune chooses and deletes under one lock), and forget what is held for them."""
        self._held.forget(thread_ids)
        for start in range(0, len(thread_ids), 400):
            some = list(thread_ids[start : start + 400])
            marks = ", ".join("?" * len(some))
            for table in TABLES:
                conn.execute(f"DELETE FROM {table} WHERE thread_id IN ({marks})", some)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        marks = ", ".join("?" * len(run_ids))
        with self._writing(None) as conn:
            doomed = conn.execute(
                "SELECT thread_id, checkpoint_ns, checkpoint_id FROM cp_checkpoints "
                f"WHERE run_id IN ({marks})",
                [str(r) for r in run_ids],
            ).fetchall()
            delete_checkpoints(conn, doomed, self._versions)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source, target = str(source_thread_id), str(target_thread_id)
        with self._writing(None) as conn:
            for table in TABLES:
                columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
                listed = ", ".join(columns)
                chosen = ", ".join("?" if c == "thread_id" else c for c in columns)
                conn.execute(
                    f"INSERT OR REPLACE INTO {table} ({listed}) SELECT {chosen} "
                    f"FROM {table} WHERE thread_id = ?",
                    (target, source),
                )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use keep_latest or delete")
        self.keep_last(thread_ids, 1 if strategy == "keep_latest" else 0)

    def keep_last(self, thread_ids: Sequence[str], keep: int) -> int:
        """Keep the newest ``keep`` checkpoints per run and namespace; return how many went.

        Blobs no kept checkpoint refers to are deleted too. (Graphs with LangGraph's
        ``DeltaChannel`` need their snapshot ancestors; corral teams do not use it.)
        """
        if keep < 0:
            raise ValueError("keep must be 0 or more")
        with self._writing(None) as conn:
            return keep_newest(conn, [str(t) for t in thread_ids], keep, self._versions)

    def _versions(self, type_: str, blob: bytes | None, thread_id: str) -> dict[str, Any]:
        """The channel versions a stored checkpoint refers to."""
        versions: dict[str, Any] = self._load(type_, blob, thread_id, "checkpoint")[
            "channel_versions"
        ]
        return versions

    # -- async: the same code on worker threads, each with its own connection ---------

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
