"""The Postgres workspace's small tables: runs, events, audit, tool calls, breakers.

Each method is one transaction. Read-modify-write steps lock what they read
(``FOR UPDATE``, or an advisory lock on a key that may not have a row yet), so two
processes on two machines never both take a run or both probe a breaker.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from corral.workspace._account import usage_by_run
from corral.workspace._audit import Audit
from corral.workspace._breakers import Breakers
from corral.workspace._pg_db import Conn, PgPool, rows
from corral.workspace._tool_calls import ToolCalls
from corral.workspace._types import (
    LEASE_SECONDS,
    NO_RUN_USAGE,
    RunRecord,
    RunStatus,
    held,
    owner_id,
)

_JSON = ("input", "output", "errors", "path", "definition")


def iso(at: float) -> str:
    """``at`` as UTC ISO 8601 with milliseconds (the runs table's times)."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def iso_z(at: float) -> str:
    """``at`` as UTC ISO 8601 with milliseconds and a ``Z`` (event times)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class PgRuns:
    """The ``runs`` table; a run's usage is read from the ledger. ``owner`` is this
    process as the owner of the runs it drives, holding each for ``lease`` seconds."""

    pool: PgPool
    clock: Callable[[], float] = field(default=time.time)
    owner: str = field(default_factory=owner_id)
    lease: float = LEASE_SECONDS

    def start(
        self,
        run_id: str,
        team: str,
        manifest: str | None,
        input: dict[str, Any],
        *,
        fingerprint: str | None = None,
        definition: dict[str, Any] | None = None,
    ) -> None:
        """Record a new run as ``running`` in this process, pinned to ``definition``."""
        at = self.clock()
        now = iso(at)
        with self.pool.write() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, team, manifest, status, started_at, updated_at, pid, "
                "input, output, errors, path, fingerprint, definition, owner, expires_at) "
                "VALUES (%s, %s, %s, 'running', %s, %s, %s, %s, 'null', '[]', '[]', %s, %s, "
                "%s, %s)",
                (
                    run_id,
                    team,
                    manifest,
                    now,
                    now,
                    os.getpid(),
                    json.dumps(input),
                    fingerprint,
                    json.dumps(definition),
                    self.owner,
                    at + self.lease,
                ),
            )

    def update(self, run_id: str, status: RunStatus, **fields: Any) -> None:
        """Set a run's status (and output, errors, path)."""
        at = self.clock()
        values: dict[str, Any] = {"status": status, "updated_at": iso(at)}
        values |= {"pid": os.getpid(), "owner": self.owner, "expires_at": at + self.lease}
        values |= {k: json.dumps(v) for k, v in fields.items() if k in _JSON}
        sets = ", ".join(f"{name} = %s" for name in values)  # names from the fixed list above
        with self.pool.write() as conn:
            conn.execute(
                f"UPDATE runs SET {sets} WHERE run_id = %s".encode(), [*values.values(), run_id]
            )

    def pin(self, run_id: str, fingerprint: str, definition: dict[str, Any]) -> None:
        """Pin the run to a new team definition."""
        with self.pool.write() as conn:
            conn.execute(
                "UPDATE runs SET fingerprint = %s, definition = %s WHERE run_id = %s",
                (fingerprint, json.dumps(definition), run_id),
            )

    def take_over(self, run_id: str) -> str | None:
        """Mark the run ``running`` and owned here unless another live holder has it (on
        this host: its process lives; elsewhere: its lease has not ended), the row locked
        while deciding. ``None`` if taken, else the holder."""
        at = self.clock()
        with self.pool.write() as conn:
            row = conn.execute(
                "SELECT status, owner, pid, expires_at FROM runs WHERE run_id = %s FOR UPDATE",
                (run_id,),
            ).fetchone()
            status, owner, pid, until = row if row is not None else (None, None, None, None)
            if status == "running" and held(owner, pid, until, self.owner, at):
                return str(owner or pid)
            conn.execute(
                "UPDATE runs SET status = 'running', pid = %s, owner = %s, expires_at = %s, "
                "updated_at = %s WHERE run_id = %s",
                (os.getpid(), self.owner, at + self.lease, iso(at), run_id),
            )
        return None

    def renew(self, run_id: str) -> bool:
        """Extend this process's lease on a run it drives; ``False`` if it is not its own."""
        with self.pool.write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET expires_at = %s WHERE run_id = %s AND owner = %s",
                (self.clock() + self.lease, run_id, self.owner),
            )
            return cursor.rowcount > 0

    def delete(self, run_id: str) -> None:
        """Forget a run (its checkpoints are the saver's to delete)."""
        with self.pool.write() as conn:
            conn.execute("DELETE FROM runs WHERE run_id = %s", (run_id,))

    def get(self, run_id: str) -> RunRecord | None:
        """The run with this id, or ``None``."""
        with self.pool.read() as conn:
            found = _records(conn, rows(conn.execute(_SELECT + "WHERE run_id = %s", (run_id,))))
        return found[0] if found else None

    def list(self, *, limit: int = 100, status: RunStatus | None = None) -> list[RunRecord]:
        """The most recent runs first (only those with ``status`` if given)."""
        # Two statements, not ``%s IS NULL OR status = %s``: each walks its own index in
        # order and stops after ``limit`` rows (the disjunction sorts every run).
        with self.pool.read() as conn:
            if status is None:
                cursor = conn.execute(_SELECT + "ORDER BY started_at DESC LIMIT %s", (limit,))
            else:
                cursor = conn.execute(
                    _SELECT + "WHERE status = %s ORDER BY started_at DESC LIMIT %s",
                    (status, limit),
                )
            return _records(conn, rows(cursor))


_SELECT = (
    "SELECT run_id, team, manifest, status, started_at, updated_at, pid, input, output, "
    "errors, path, fingerprint, definition, owner, expires_at FROM runs "
)


def _records(conn: Conn, found: list[dict[str, Any]]) -> list[RunRecord]:
    usage = usage_by_run(conn, "%s", [r["run_id"] for r in found]) if found else {}
    return [
        RunRecord(
            **{k: json.loads(v) if k in _JSON and v is not None else v for k, v in r.items()},
            usage=usage.get(r["run_id"], NO_RUN_USAGE),
        )
        for r in found
    ]


@dataclass
class PgEvents:
    """The ``events`` table."""

    pool: PgPool
    clock: Callable[[], float] = field(default=time.time)

    def record(self, run_id: str, kind: str, agent: str | None, data: dict[str, Any]) -> None:
        """Append one event."""
        with self.pool.write() as conn:
            conn.execute(
                "INSERT INTO events (run_id, at, kind, agent, data) VALUES (%s, %s, %s, %s, %s)",
                (run_id, iso_z(self.clock()), kind, agent, json.dumps(data, default=str)),
            )

    def list(
        self, run_id: str, kind: str | None = None, *, conn: Conn | None = None
    ) -> list[dict[str, Any]]:
        """A run's events (of one kind), oldest first, as ``{"kind", "agent", "at", **data}``."""
        with self.pool.reading(conn) as db:
            found = db.execute(
                "SELECT kind, agent, at, data FROM events WHERE run_id = %s AND "
                "(%s::text IS NULL OR kind = %s) ORDER BY id",
                (run_id, kind, kind),
            ).fetchall()
        return [{"kind": k, "agent": a, "at": at, **json.loads(d)} for k, a, at, d in found]


@dataclass
class PgAudit(Audit):
    """The ``audit`` table of a Postgres workspace (``Audit``'s logic)."""

    pool: PgPool
    mark: ClassVar[str] = "%s"  # psycopg's placeholder


@dataclass
class PgToolCalls(ToolCalls):
    """The ``tool_calls`` table of a Postgres workspace (``ToolCalls``' logic)."""

    pool: PgPool
    mark: ClassVar[str] = "%s"  # psycopg's placeholder


def _breaker_lock(agent: str) -> int:
    """An advisory lock key per agent (the breaker row may not exist yet)."""
    return 0x636F7200000000 + zlib.crc32(agent.encode())


@dataclass
class PgBreakers(Breakers):
    """The ``breakers`` table of a Postgres workspace; each transition holds the agent's
    advisory lock (its row may not exist yet)."""

    pool: PgPool
    mark: ClassVar[str] = "%s"  # psycopg's placeholder

    def locked(self, agent: str) -> AbstractContextManager[Any]:
        return self.pool.write(_breaker_lock(agent))
