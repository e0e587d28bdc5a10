"""Connections to a Postgres workspace: a psycopg 3 pool, one transaction per operation.

Every operation borrows a connection and runs in one transaction (committed when the
block ends, rolled back if it raises). Checks that must be atomic with their writes
take a transaction-scoped advisory lock (``lock``) or row locks, so processes on any
number of machines sharing the database cannot together pass a limit.

Creating the schema takes an advisory lock for the length of its transaction, so many
processes opening a fresh database at once create it exactly once.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from corral.errors import InputError
from corral.workspace._db import closed_error
from corral.workspace._pg_url import shown

Conn = psycopg.Connection[tuple[Any, ...]]

SCHEMA_LOCK = 0x636F7272616C  # "corral": held while a process creates the tables
LEDGER_LOCK = 0x636F72726C01  # reservations, settlements, grants: one at a time
BOARD_LOCK = 0x636F72726C02  # task creation under the rate and pending limits
STORE_LOCK = 0x636F72726C03  # LangGraph's store migrations


def check_dropped(conn: psycopg.Connection[Any]) -> None:
    """psycopg-pool's connection check, made only when the server has written to the idle
    connection (the error it drops it with, or the socket's end): a poll of the socket
    instead of a round trip each time a connection is taken."""
    if conn.closed:
        ConnectionPool.check_connection(conn)  # raises: the pool replaces it
        return
    poll = select.poll()
    poll.register(conn.fileno(), select.POLLIN)
    if poll.poll(0):
        ConnectionPool.check_connection(conn)


class PgPool:
    """A pool of connections to one Postgres database (``psycopg_pool``)."""

    def __init__(self, url: str, *, max_size: int = 8, timeout: float = 30.0) -> None:
        self.url = url
        try:  # one plain connection first: a wrong URL fails at once, with the reason
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"cannot connect to the Postgres workspace {shown(url)}: {reason}; check that "
                "the server runs and the URL (user, password, host, port, database)",
                field="db",
            ) from None
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": True},  # transactions are explicit: ``write``, ``read``
            check=check_dropped,  # one the server dropped is replaced
        )
        try:
            self._pool.open(wait=True, timeout=min(timeout, 15.0))
        except PoolTimeout:
            self._pool.close()
            raise InputError(
                f"cannot connect to the Postgres workspace {shown(url)}; check that the "
                "server runs and the URL (user, password, host, port, database) is right",
                field="db",
            ) from None

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (a closed pool opens no connection again)."""
        return self._pool.closed

    def _connection(self) -> AbstractContextManager[Conn]:
        if self._pool.closed:
            raise closed_error(shown(self.url))
        return self._pool.connection()

    @contextmanager
    def write(self, *locks: int) -> Iterator[Conn]:
        """One transaction: all of it or none of it. ``locks``: advisory lock keys held
        until it ends (taken in the order given)."""
        with self._connection() as conn:
            conn.isolation_level, conn.read_only = None, False
            with conn.transaction():
                for key in locks:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
                yield conn

    @contextmanager
    def read(self) -> Iterator[Conn]:
        """A consistent snapshot for several reads (repeatable read, read only)."""
        with self._connection() as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                yield conn

    @contextmanager
    def query(self) -> Iterator[Conn]:
        """A connection for one statement (its own snapshot; no transaction round trips)."""
        with self._connection() as conn:
            yield conn

    def reading(self, conn: Conn | None) -> AbstractContextManager[Conn]:
        """``conn`` if the caller holds one (several reads, one snapshot), else a read."""
        return nullcontext(conn) if conn is not None else self.read()

    def setup(
        self,
        ddl: str,
        then: Callable[[Conn], None] | None = None,
        first: Callable[[Conn], None] | None = None,
    ) -> None:
        """Run ``first`` (a check that may refuse the database), ``ddl`` (``CREATE ... IF
        NOT EXISTS`` statements), then ``then`` (an upgrade), in one transaction under the
        schema lock."""
        with self.write(SCHEMA_LOCK) as conn:
            if first is not None:
                first(conn)
            for statement in ddl.split(";"):
                if statement.strip():
                    conn.execute(statement.encode())
            if then is not None:
                then(conn)

    def close(self) -> None:
        """Close every connection."""
        self._pool.close()


def rows(cursor: psycopg.Cursor[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The cursor's rows as dicts by column name."""
    found = cursor.fetchall()
    names = [d.name for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in found]
