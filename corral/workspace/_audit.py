"""The audit log: who did what to which context or tool, when, and the verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corral.workspace._db import ConnectionPool


@dataclass
class SqliteAudit:
    """The ``audit`` table: who did what to which context, when, and the verdict."""

    pool: ConnectionPool
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        self.pool.ensure(
            "audit",
            {
                "id": int,
                "run_id": str,
                "at": float,
                "agent": str,
                "action": str,
                "scope": str,
                "target": str,
                "verdict": str,
                "reason": str,
            },
            pk="id",
            indexes=[("run_id",)],
        )

    def record(
        self,
        run_id: str,
        agent: str,
        action: str,
        *,
        scope: str,
        target: str,
        verdict: str,
        reason: str = "",
    ) -> None:
        with self.pool.write() as conn:
            conn.execute(
                "INSERT INTO audit (run_id, at, agent, action, scope, target, verdict, "
                "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, self.clock(), agent, action, scope, target, verdict, reason),
            )

    def rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        with self.pool.read() as conn:
            cursor = conn.execute(
                "SELECT run_id, agent, action, scope, target, verdict, reason "
                "FROM audit WHERE (? IS NULL OR run_id = ?) ORDER BY id",
                (run_id, run_id),
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
