"""The audit log: who did what to which context or tool, when, and the verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from corral.workspace._db import ConnectionPool
from corral.workspace._tool_calls import Pool

_COLUMNS = "run_id, agent, action, scope, target, verdict, reason"


@dataclass
class Audit:
    """The ``audit`` table: who did what to which context, when, and the verdict. One
    logic for every backend: they differ only in their pool and placeholder (``mark``)."""

    pool: Pool
    clock: Callable[[], float] = field(default=time.time)
    mark: ClassVar[str] = "?"

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
        marks = ", ".join([self.mark] * 8)
        with self.pool.write() as conn:
            conn.execute(
                f"INSERT INTO audit (at, {_COLUMNS}) VALUES ({marks})",
                (self.clock(), run_id, agent, action, scope, target, verdict, reason),
            )

    def rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        where, args = ("", ()) if run_id is None else (f"WHERE run_id = {self.mark}", (run_id,))
        with self.pool.read() as conn:
            cursor = conn.execute(f"SELECT {_COLUMNS} FROM audit {where} ORDER BY id", args)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass
class SqliteAudit(Audit):
    """The ``audit`` table of a SQLite workspace."""

    pool: ConnectionPool

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
