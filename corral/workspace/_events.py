"""Run events: guard trips, refused delegations, created tasks; one row each."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from corral.workspace._db import ConnectionPool


@dataclass
class SqliteEvents:
    """The ``events`` table of a workspace."""

    pool: ConnectionPool
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        self.pool.ensure(
            "events",
            {"id": int, "run_id": str, "at": str, "kind": str, "agent": str, "data": str},
            pk="id",
            indexes=[("run_id", "kind")],
        )

    def record(self, run_id: str, kind: str, agent: str | None, data: dict[str, Any]) -> None:
        """Append one event."""
        with self.pool.write() as conn:
            conn.execute(
                "INSERT INTO events (run_id, at, kind, agent, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, _iso(self.clock()), kind, agent, json.dumps(data, default=str)),
            )

    def list(
        self, run_id: str, kind: str | None = None, *, conn: sqlite3.Connection | None = None
    ) -> list[dict[str, Any]]:
        """A run's events (of one kind), oldest first, as ``{"kind", "agent", "at", **data}``."""
        with self.pool.reading(conn) as db:
            rows = db.execute(
                "SELECT kind, agent, at, data FROM events WHERE run_id = ? AND "
                "(? IS NULL OR kind = ?) ORDER BY id",
                (run_id, kind, kind),
            )
            return [{"kind": k, "agent": a, "at": at, **json.loads(d)} for k, a, at, d in rows]


def _iso(at: float) -> str:
    """``at`` as UTC ISO 8601 with milliseconds and a ``Z``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
