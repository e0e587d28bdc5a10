"""Connections to a workspace file: one per thread, WAL, busy timeout, explicit transactions.

SQLite serialises writers itself; corral adds no process-wide lock on top, so
threads (and asyncio tasks served by worker threads) read in parallel and queue for
the write lock inside SQLite, waiting up to the busy timeout instead of failing.

A damaged file (SQLite says "malformed" or "not a database") raises
``WorkspaceDamaged`` wherever it shows, and from then on the pool refuses to write.
Opening reads the schema and the first row of every table (about half a millisecond
at any size), which finds a damaged header, schema or table root page before anything
is written; ``PRAGMA quick_check`` would read every page (100 ms for 138 MB).
"""

from __future__ import annotations

import collections
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Literal

import sqlite_utils

from corral.errors import InputError, WorkspaceDamaged

Synchronous = Literal["NORMAL", "FULL"]
BUSY_TIMEOUT_MS = 60_000


class ConnectionPool:
    """Reusable connections to one SQLite file, handed to whichever thread needs one.

    Connections are not tied to threads (LangGraph writes checkpoints from
    short-lived executor threads); an operation takes an idle connection, or opens
    one, and gives it back. Reads run in parallel; writes queue (see ``write``).

    The idle connections are a stack: an operation takes the one given back last. A
    connection's page cache is void once another connection commits, and its next
    transaction reads its pages again: handed out in turn (a queue), an agent step's
    ledger write and checkpoint alternated two connections, 24.5 page reads a step
    (``benchmarks/syscalls.py``).
    """

    def __init__(self, path: Path, *, synchronous: Synchronous = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = path
        self.synchronous = synchronous
        self._idle: collections.deque[sqlite3.Connection] = collections.deque()  # a stack
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()  # only around the list of connections
        self._writer = threading.Lock()
        self.damage: str | None = None
        """SQLite's message once the file was found damaged; nothing is written after."""
        self.closed = False
        """Set by ``close``: no connection is opened again (see ``closed_error``)."""
        try:
            with self.connection() as conn:  # fail now, with a clear error, if the file is unusable
                _probe(conn)
        except BaseException:
            self.close()
            raise

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """An idle connection for the duration of the block."""
        if self.closed:
            raise closed_error(str(self.path))
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = _open(self.path, self.synchronous)
            with self._guard:
                self._all.append(conn)
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            if not damaged(exc):
                raise
            self.damage = str(exc)
            raise WorkspaceDamaged(str(self.path), self.damage) from exc
        finally:
            if not self.closed:  # closed meanwhile: ``close`` closed it
                self._idle.append(conn)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One atomic write transaction (``BEGIN IMMEDIATE``): all of it or none of it."""
        # SQLite admits one writer at a time. Writers of this process queue on a lock,
        # which wakes the next at once; SQLite's busy handler (which sleeps between
        # polls) is left to arbitrate between processes only.
        with self._writer, self.connection() as conn:
            if self.damage is not None:
                raise WorkspaceDamaged(str(self.path), self.damage)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads."""
        with self.connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def ensure(
        self,
        table: str,
        columns: dict[str, type],
        *,
        pk: str | tuple[str, ...],
        indexes: Sequence[Sequence[str]] = (),
    ) -> None:
        """Create one of corral's tables (and its indexes) with sqlite-utils, if missing."""
        with self.write() as conn:
            found = sqlite_utils.Database(conn)[table]
            found.create(columns, pk=pk, if_not_exists=True)  # type: ignore[union-attr]
            known = found.columns_dict
            for name, kind in columns.items():  # a column added since the file was made
                if name not in known:
                    found.add_column(name, kind)  # type: ignore[union-attr]
            for index in indexes:
                found.create_index(list(index), if_not_exists=True)  # type: ignore[union-attr]

    def reading(
        self, conn: sqlite3.Connection | None
    ) -> AbstractContextManager[sqlite3.Connection]:
        """``conn`` if the caller already holds one (several reads, one snapshot), else a
        fresh read."""
        return nullcontext(conn) if conn is not None else self.read()

    def close(self) -> None:
        """Close every connection this pool opened; it opens none again."""
        self.closed = True
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._idle = collections.deque()


def closed_error(where: str) -> InputError:
    """The error of a workspace used after it was closed."""
    return InputError(
        f"the workspace {where} was closed (by close(), or at the end of its `with` "
        "block); open it again to go on (for an App: compile the team again)",
        field="db",
    )


def damaged(exc: sqlite3.Error) -> bool:
    """Whether SQLite's error says the file is damaged (malformed, or not a database)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _probe(conn: sqlite3.Connection) -> None:
    """Read the schema and the first row of every ordinary table (see the module doc)."""
    tables = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'"
    ).fetchall()
    for (name,) in tables:
        quoted = '"' + name.replace('"', '""') + '"'
        conn.execute(f"SELECT * FROM {quoted} NOT INDEXED LIMIT 1").fetchall()


def _open(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    if path.is_dir():
        raise InputError(
            f"workspace database {path} is a directory; pass a file path such as .corral/corral.db",
            field="db",
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except (OSError, sqlite3.Error) as exc:
        raise InputError(
            f"cannot create the workspace database {path}: {exc}; pass a writable path with --db",
            field="db",
        ) from None
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("BEGIN IMMEDIATE")  # proves the file is writable
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.close()
        if damaged(exc):
            raise WorkspaceDamaged(str(path), str(exc)) from exc
        raise InputError(
            f"cannot write the workspace database {path}: {exc}; pass a writable path with --db",
            field="db",
        ) from None
    return conn


@contextmanager
def setup_lock(path: Path) -> Iterator[None]:
    """Held while a process creates or migrates the workspace at ``path``: an advisory
    lock on its folder, so processes opening one fresh file set it up one at a time
    (SQLite's own locks would be released by an unrelated close of the same file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError as exc:
        raise InputError(
            f"cannot create the workspace database {path}: {exc}; pass a writable path with --db",
            field="db",
        ) from None
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # closing releases the lock
