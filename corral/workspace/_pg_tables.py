"""The Postgres workspace's small tables: runs, events, audit, tool calls, breakers.

Each method is one transaction. Read-modify-write steps lock what they read
(``FOR UPDATE``, or an advisory lock on a key that may not have a row yet), so two
processes on two machines never both take a run or both probe a breaker.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from corral.workspace._audit import Audit
from corral.workspace._breakers import Breakers
from corral.workspace._pg_db import Conn, PgPool
from corral.workspace._runs import Runs
from corral.workspace._tool_calls import ToolCalls


def iso_z(at: float) -> str:
    """``at`` as UTC ISO 8601 with milliseconds and a ``Z`` (event times)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class PgRuns(Runs):
    """The ``runs`` table of a Postgres workspace (``Runs``' logic); ``take_over`` locks
    the run's row while it decides."""

    pool: PgPool
    mark: ClassVar[str] = "%s"  # psycopg's placeholder
    lock_row: ClassVar[str] = " FOR UPDATE"


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
