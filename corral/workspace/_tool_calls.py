"""Tool effects with a record on both sides of the call: each call has an idempotency key
(run, task, position, tool, arguments) and a slot (run, task, position). Its start is
recorded before it runs and its result after, so a call already made is answered from its
record, and a call a crash left started and unfinished is known to be *in doubt*."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corral.workspace._db import ConnectionPool
from corral.workspace._types import Started


def idempotency_key(run_id: str, task: str, index: int, tool: str, args: Any) -> str:
    """The key of the ``index``-th tool call of a task (same call, same key)."""
    text = json.dumps([run_id, task, index, tool, args], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def call_slot(run_id: str, task: str, index: int) -> str:
    """Where in a run a tool call is made (whatever the call turns out to be)."""
    return json.dumps([run_id, task, index])


@dataclass
class SqliteToolCalls:
    """The ``tool_calls`` table: each call's start, then its result, by idempotency key.

    ``state`` is ``started`` while the call runs, ``done`` once its result (or a person's
    decision about it) is recorded, ``failed`` if the tool raised.
    """

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
                "slot": str,
                "state": str,
            },
            pk="key",
            indexes=[("slot",)],
        )

    def recorded(self, key: str) -> str | None:
        """The result of a call already made, if any."""
        with self.pool.read() as conn:
            row = conn.execute(
                "SELECT result FROM tool_calls WHERE key = ? AND coalesce(state, 'done') = 'done'",
                (key,),
            ).fetchone()
        return None if row is None else str(row[0])

    def in_doubt(self, slot: str) -> Started | None:
        """A call at ``slot`` that started and never finished (a crash in the middle)."""
        with self.pool.read() as conn:
            row = conn.execute(
                "SELECT key, tool, args, at FROM tool_calls WHERE slot = ? AND state = 'started'"
                " ORDER BY at LIMIT 1",
                (slot,),
            ).fetchone()
        if row is None:
            return None
        return Started(key=row[0], tool=row[1], args=json.loads(row[2]), at=row[3])

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """A run's tool calls, oldest first (``state`` says which finished)."""
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT agent, tool, args, result, at, coalesce(state, 'done') FROM tool_calls"
                " WHERE run_id = ? ORDER BY at",
                (run_id,),
            ).fetchall()
        return [
            {"agent": a, "tool": t, "args": json.loads(g), "result": r, "at": at, "state": s}
            for a, t, g, r, at, s in rows
        ]

    def begin(self, key: str, *, slot: str, run_id: str, agent: str, tool: str, args: Any) -> None:
        """Record that a call is about to run (committed before the tool is called)."""
        with self.pool.write() as conn:
            conn.execute(
                "INSERT INTO tool_calls (key, run_id, agent, tool, args, result, at, slot, state)"
                " VALUES (?, ?, ?, ?, ?, '', ?, ?, 'started')"
                " ON CONFLICT (key) DO UPDATE SET state = 'started', at = excluded.at"
                " WHERE tool_calls.state != 'done'",
                (key, run_id, agent, tool, json.dumps(args, default=str), self.clock(), slot),
            )

    def record(
        self, key: str, *, run_id: str, agent: str, tool: str, args: Any, result: str
    ) -> None:
        """Record a call's result, or a person's decision about a call in doubt (the first
        finished record wins)."""
        with self.pool.write() as conn:
            conn.execute(
                "INSERT INTO tool_calls (key, run_id, agent, tool, args, result, at, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'done')"
                " ON CONFLICT (key) DO UPDATE SET result = excluded.result, state = 'done'"
                " WHERE coalesce(tool_calls.state, 'done') != 'done'",
                (key, run_id, agent, tool, json.dumps(args, default=str), result, self.clock()),
            )

    def failed(self, key: str, error: str) -> None:
        """The tool raised: the call is over, not in doubt (it runs again if the node does)."""
        with self.pool.write() as conn:
            conn.execute(
                "UPDATE tool_calls SET state = 'failed', result = ? WHERE key = ?"
                " AND state = 'started'",
                (error, key),
            )
