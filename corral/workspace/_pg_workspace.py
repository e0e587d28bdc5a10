"""The Postgres workspace: one database shared by processes on any number of machines,
holding checkpoints and every corral table (``corral[scale]``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from langgraph.store.postgres import PostgresStore
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from corral.workspace._db import closed_error
from corral.workspace._pg_board import PgBoard
from corral.workspace._pg_db import STORE_LOCK, PgPool, check_dropped
from corral.workspace._pg_ledger import PgLedger
from corral.workspace._pg_prune import ended_before, forget_runs, size, vacuum
from corral.workspace._pg_saver import PgSaver
from corral.workspace._pg_tables import PgAudit, PgBreakers, PgEvents, PgRuns, PgToolCalls
from corral.workspace._pg_url import shown
from corral.workspace._report import PruneReport
from corral.workspace._runs import iso
from corral.workspace._trips import distinct_trips
from corral.workspace._types import RunSummary


class PostgresWorkspace:
    """A workspace in a Postgres database: a connection pool, the checkpointer and every
    corral table, created idempotently under an advisory lock.

    The clock is injected into every table that records time, as in ``SqliteWorkspace``.
    """

    def __init__(
        self,
        url: str,
        *,
        keep: int | None = None,
        clock: Callable[[], float] = time.time,
        pool_size: int = 8,
    ) -> None:
        self.url = url
        self.clock = clock
        self.pool = PgPool(url, max_size=pool_size)
        try:
            self.saver = PgSaver(self.pool, keep=keep)  # creates every table
        except BaseException:
            self.pool.close()
            raise
        self.runs = PgRuns(self.pool, clock)
        self.board = PgBoard(self.pool, clock)
        self.events = PgEvents(self.pool, clock)
        self.ledger = PgLedger(self.pool, clock)
        self.breakers = PgBreakers(self.pool, clock)
        self.audit = PgAudit(self.pool, clock)
        self.tool_calls = PgToolCalls(self.pool, clock)
        self._store: PostgresStore | None = None
        self._store_pool: ConnectionPool[psycopg.Connection[DictRow]] | None = None

    @property
    def where(self) -> str:
        """The database URL (its password hidden)."""
        return shown(self.url)

    @property
    def store(self) -> PostgresStore:
        """LangGraph's ``PostgresStore`` in the same database (opened on first use, on its
        own pool of autocommit connections, as that store requires; a dropped connection
        is replaced)."""
        if self._store is None:
            if self.pool.closed:
                raise closed_error(self.where)
            pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
                self.url,
                min_size=1,
                max_size=2,
                open=True,
                check=check_dropped,  # a dropped connection is replaced
                kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            )
            store = PostgresStore(pool)
            # Its migrations are not safe to run concurrently, and one builds an index
            # CONCURRENTLY, which waits out every open transaction: a process blocked in
            # pg_advisory_lock would be one (a deadlock), so wait by polling instead.
            with pool.connection() as conn:
                while (
                    conn.execute(
                        "SELECT 1 WHERE pg_try_advisory_lock(%s)", (STORE_LOCK,)
                    ).fetchone()
                    is None
                ):
                    time.sleep(0.05)
                try:
                    store.setup()
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (STORE_LOCK,))
            self._store, self._store_pool = store, pool
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
            self.saver.forget(conn, [run_id])
            forget_runs(conn, [run_id])

    def prune(self, *, older_than: float | None = None, keep: int | None = None) -> PruneReport:
        """Forget ended runs last updated more than ``older_than`` seconds ago (with
        everything kept about them but the day totals; one transaction), trim the other
        completed runs to their newest ``keep`` checkpoints, then ``VACUUM`` the tables
        touched: Postgres reuses the freed space for new rows, and ``freed`` is what
        their size on disk shrank (only empty pages at a table's end go back; 0 when the
        free-space and visibility maps VACUUM writes outweigh them)."""
        with self.pool.query() as conn:
            before = size(conn)
        forgotten: list[str] = []
        if older_than is not None:
            with self.pool.write() as conn:
                forgotten = ended_before(conn, iso(self.clock() - older_than))
                self.saver.forget(conn, forgotten)
                forget_runs(conn, forgotten)
        trimmed, completed = 0, []
        if keep is not None:
            with self.pool.read() as conn:
                rows = conn.execute("SELECT run_id FROM runs WHERE status = 'completed'")
                completed = [str(r[0]) for r in rows]
            trimmed = self.saver.keep_last(completed, keep)
        with self.pool.query() as conn:
            vacuumed = vacuum(conn)
            after = size(conn)
        return PruneReport(
            len(forgotten), len(completed), trimmed, max(0, before - after), vacuumed, reuses=True
        )

    def close(self) -> None:
        """Commit held checkpoint writes and close every connection (a second close does
        nothing)."""
        if self._store_pool is not None:
            self._store_pool.close()
            self._store, self._store_pool = None, None
        try:
            self.saver.close()
        finally:
            self.pool.close()
