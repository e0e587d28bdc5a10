"""Exactly-once tool effects: each tool call has an idempotency key (run, task, call), and
a call already made is answered from its recorded result instead of running again."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corral.workspace._db import ConnectionPool


def idempotency_key(run_id: str, task: str, index: int, tool: str, args: Any) -> str:
    """The key of the ``index``-th tool call of a task (same call, same key)."""
    text = json.dumps([run_id, task, index, tool, args], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class SqliteToolCalls:
    """The ``tool_calls`` table: recorded results by idempotency key."""

    pool: ConnectionPool
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        self.pool.ensure(
            "tool_calls",
            {
                "key": str,
                "run_id": str,
                "agent": str,
                "tool": str,
                "args": str,
                "result": str,
                "at": float,
            },
            pk="key",
        )

    def recorded(self, key: str) -> str | None:
        """The result of a call already made, if any."""
        with self.pool.read() as conn:
            row = conn.execute("SELECT result FROM tool_calls WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """A run's recorded tool calls, oldest first."""
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT agent, tool, args, result, at FROM tool_calls WHERE run_id = ? ORDER BY at",
                (run_id,),
            ).fetchall()
        return [
            {"agent": a, "tool": t, "args": json.loads(g), "result": r, "at": at}
            for a, t, g, r, at in rows
        ]

    def record(
        self, key: str, *, run_id: str, agent: str, tool: str, args: Any, result: str
    ) -> None:
        """Remember a call's result (the first record wins)."""
        with self.pool.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO tool_calls VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, run_id, agent, tool, json.dumps(args, default=str), result, self.clock()),
            )
