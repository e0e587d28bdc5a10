"""The SQLite workspace: one file (WAL) holding checkpoints and every corral table."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from langgraph.store.sqlite import SqliteStore

from corral.errors import InputError, WorkspaceDamaged
from corral.workspace._audit import SqliteAudit
from corral.workspace._board import SqliteBoard
from corral.workspace._breakers import SqliteBreakers
from corral.workspace._db import (
    BUSY_TIMEOUT_MS,
    ConnectionPool,
    Synchronous,
    closed_error,
    setup_lock,
)
from corral.workspace._events import SqliteEvents
from corral.workspace._ledger import SqliteLedger
from corral.workspace._pg_url import postgres_url
from corral.workspace._prune import ended_before, forget_runs
from corral.workspace._report import PruneReport
from corral.workspace._runs import SqliteRuns
from corral.workspace._saver import CorralSaver
from corral.workspace._tool_calls import SqliteToolCalls
from corral.workspace._trips import distinct_trips
from corral.workspace._types import RunSummary

if TYPE_CHECKING:
    from corral.workspace._pg_workspace import PostgresWorkspace

SCHEMA_VERSION = 1
"""The version of corral's tables a workspace file has (SQLite's ``user_version``)."""


class SqliteWorkspace:
    """One workspace file: its connections, checkpointer and every corral table.

    The clock is injected into every table that records time, so tests (and a run
    resumed across a day boundary) see one consistent time.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "NORMAL",
        keep: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        # Creating and migrating the tables happens once, under a lock, however many
        # processes open a fresh workspace at the same instant.
        with setup_lock(self.path):
            self.pool = ConnectionPool(self.path, synchronous=synchronous)
            with self.pool.connection() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:  # a newer corral's tables: never downgrade them
                self.pool.close()
                raise InputError(
                    f"the workspace {self.path} was written by a newer corral (tables "
                    f"version {version}; this corral knows {SCHEMA_VERSION}); upgrade "
                    "corral to use it",
                    field="db",
                )
            self.saver = CorralSaver(self.pool, keep=keep)
            self.runs = SqliteRuns(self.pool, clock=clock)
            self.board = SqliteBoard(self.pool, clock=clock)
            self.events = SqliteEvents(self.pool, clock=clock)
            self.ledger = SqliteLedger(self.pool, clock=clock)
            self.breakers = SqliteBreakers(self.pool, clock=clock)
            self.audit = SqliteAudit(self.pool, clock=clock)
            self.tool_calls = SqliteToolCalls(self.pool, clock=clock)
            if version != SCHEMA_VERSION:  # opening an up-to-date file writes nothing
                with self.pool.write() as conn:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._store: SqliteStore | None = None

    @property
    def where(self) -> str:
        """The workspace file."""
        return str(self.path)

    @property
    def store(self) -> SqliteStore:
        """LangGraph's ``SqliteStore`` in the same file (opened on first use; it keeps
        its own connection because it runs its own transactions)."""
        if self._store is None:
            if self.pool.closed:
                raise closed_error(self.where)
            if self.pool.damage is not None:  # its setup writes
                raise WorkspaceDamaged(self.where, self.pool.damage)
            conn = sqlite3.connect(
                self.path, check_same_thread=False, timeout=60, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            store = SqliteStore(conn)
            with setup_lock(self.path):  # its migrations are not safe to run concurrently
                store.setup()
            self._store = store
        return self._store

    def run_summary(self, run_id: str) -> RunSummary:
        """A run's account, guard trips (each cause once) and tasks created, in one read
        snapshot."""
        with self.pool.read() as conn:
            usage = self.ledger.run_usage(run_id, conn=conn)
            trips = self.events.list(run_id, "guard_trip", conn=conn)
            created = self.board.created(run_id, conn=conn)
        return RunSummary(usage=usage, guard_trips=distinct_trips(trips), tasks_created=created)

    def release(self, run_id: str) -> None:
        """Forget what the checkpointer keeps in memory for a run that ended or paused."""
        self.saver.release(run_id)

    def delete_run(self, run_id: str) -> None:
        """Delete a run's checkpoints, writes and record, and its calls, events, audit
        rows, tasks and running totals (as ``prune`` does), in one transaction; a run
        another process drives is refused (``InputError``)."""
        with self.pool.write() as conn:
            self.runs.idle(conn, run_id)  # in the delete's transaction: no resume between
            self.saver.delete_threads(conn, [run_id])
            forget_runs(conn, [run_id])

    def prune(self, *, older_than: float | None = None, keep: int | None = None) -> PruneReport:
        """Forget ended runs last updated more than ``older_than`` seconds ago (with
        everything kept about them but the day totals), trim the other completed runs
        to their newest ``keep`` checkpoints, then give the freed space back to the
        file system (``VACUUM``)."""
        before = self.path.stat().st_size + _wal_size(self.path)
        forgotten: list[str] = []
        if older_than is not None:
            cutoff = datetime.fromtimestamp(self.clock() - older_than, UTC)
            # chosen and deleted under one write lock: a run resumed meanwhile (by another
            # process) is not chosen, or waits and then finds no record
            with self.pool.write() as conn:
                forgotten = ended_before(conn, cutoff.isoformat(timespec="milliseconds"))
                self.saver.delete_threads(conn, forgotten)
                forget_runs(conn, forgotten)
        trimmed, completed = 0, []
        if keep is not None:
            with self.pool.read() as conn:
                rows = conn.execute("SELECT run_id FROM runs WHERE status = 'completed'")
                completed = [str(r[0]) for r in rows]
            trimmed = self.saver.keep_last(completed, keep)
        vacuumed = True
        with self.pool.connection() as conn:
            try:
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError:  # busy past the timeout: the rows are gone
                vacuumed = False  # anyway, and SQLite reuses their pages
        after = self.path.stat().st_size + _wal_size(self.path)
        return PruneReport(len(forgotten), len(completed), trimmed, before - after, vacuumed)

    def close(self) -> None:
        """Close every connection."""
        if self._store is not None:
            self._store.conn.close()
            self._store = None
        self.pool.close()


def _wal_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


if TYPE_CHECKING:
    OpenWorkspace: TypeAlias = SqliteWorkspace | PostgresWorkspace
    """What ``open_workspace`` returns (for type checkers; Postgres is optional)."""


def open_workspace(
    where: str | Path,
    *,
    synchronous: Synchronous = "NORMAL",
    keep: int | None = None,
    clock: Callable[[], float] = time.time,
) -> OpenWorkspace:
    """Open the workspace at ``where``, creating its tables if new: a SQLite file path, or
    a ``postgresql://`` URL (needs ``corral[scale]``; ``synchronous`` is SQLite's)."""
    url = postgres_url(where)
    if url is None:
        return SqliteWorkspace(where, synchronous=synchronous, keep=keep, clock=clock)
    try:  # optional dependencies (corral[scale]); corral's own import errors stay loud
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"a Postgres workspace needs psycopg ({exc}); install corral[scale]", field="db"
        ) from None
    from corral.workspace._pg_workspace import PostgresWorkspace

    return PostgresWorkspace(url, keep=keep, clock=clock)
