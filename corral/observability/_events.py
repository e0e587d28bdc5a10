"""Run events: guard trips, refused delegations, created tasks; one row each."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from corral.checkpoints import ConnectionPool


@dataclass
class EventLog:
    """The ``events`` table of a workspace."""

    pool: ConnectionPool

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
                "INSERT INTO events (run_id, at, kind, agent, data) VALUES "
                "(?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?, ?, ?)",
                (run_id, kind, agent, json.dumps(data, default=str)),
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
