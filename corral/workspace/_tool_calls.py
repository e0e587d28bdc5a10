"""Tool effects with a record on both sides of the call: each call has an idempotency key
(run, task, position, tool, arguments) and a slot (run, task, position). Its start is
recorded before it runs and its result after, so a call already made is answered from its
record, and a call a crash left started and unfinished is known to be *in doubt*."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from corral.workspace._db import ConnectionPool
from corral.workspace._types import Started


def idempotency_key(run_id: str, task: str, index: int, tool: str, args: Any) -> str:
    """The key of the ``index``-th tool call of a task (same call, same key)."""
    text = json.dumps([run_id, task, index, tool, args], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def call_slot(run_id: str, task: str, index: int) -> str:
    """Where in a run a tool call is made (whatever the call turns out to be)."""
    return json.dumps([run_id, task, index])


# The rules of a call's record, the same on every backend (each writes its own SQL
# around them): a result is answered only from a finished record (rows older than
# ``state`` count as finished); a call started and never finished is in doubt (the
# oldest first); a call starts again unless it finished; the first finished record wins.
DONE = "coalesce(state, 'done') = 'done'"
IN_DOUBT = "state = 'started' ORDER BY at LIMIT 1"
RESTART = "WHERE tool_calls.state != 'done'"
FIRST_WINS = "WHERE coalesce(tool_calls.state, 'done') != 'done'"
STARTED = "ON CONFLICT (key) DO UPDATE SET state = 'started', at = excluded.at " + RESTART
FINISHED = "ON CONFLICT (key) DO UPDATE SET result = excluded.result, state = 'done' " + FIRST_WINS
COLUMNS = "agent, tool, args, result, at, coalesce(state, 'done')"
"""The columns ``call`` reads, in its order."""


def started(row: tuple[Any, ...] | None) -> Started | None:
    """The call in doubt of an ``IN_DOUBT`` row (key, tool, args, at), if any."""
    return (
        None
        if row is None
        else Started(key=row[0], tool=row[1], args=json.loads(row[2]), at=row[3])
    )


def call(row: tuple[Any, ...]) -> dict[str, Any]:
    """A run's tool call, from a row of ``COLUMNS``."""
    agent, tool, args, result, at, state = row
    return {
        "agent": agent,
        "tool": tool,
        "args": json.loads(args),
        "result": result,
        "at": at,
        "state": state,
    }


def shown(args: Any) -> str:
    """A call's arguments as its record keeps them (JSON, anything else as text)."""
    return json.dumps(args, default=str)


class Pool(Protocol):
    """What a table of either backend needs of its pool: a read and a write transaction."""

    def read(self) -> AbstractContextManager[Any]: ...
    def write(self) -> AbstractContextManager[Any]: ...


@dataclass
class ToolCalls:
    """The ``tool_calls`` table: each call's start, then its result, by idempotency key.

    ``state`` is ``started`` while the call runs, ``done`` once its result (or a person's
    decision about it) is recorded, ``failed`` if the tool raised. One logic for every
    backend: they differ only in their pool and their placeholder (``mark``).
    """

    pool: Pool
    clock: Callable[[], float] = field(default=time.time)
    mark: ClassVar[str] = "?"

    def recorded(self, key: str) -> str | None:
        """The result of a call already made, if any."""
        p = self.mark
        with self.pool.read() as conn:
            row = conn.execute(
                f"SELECT result FROM tool_calls WHERE key = {p} AND {DONE}", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def in_doubt(self, slot: str) -> Started | None:
        """A call at ``slot`` that started and never finished (a crash in the middle)."""
        p = self.mark
        with self.pool.read() as conn:
            return started(
                conn.execute(
                    f"SELECT key, tool, args, at FROM tool_calls WHERE slot = {p} AND {IN_DOUBT}",
                    (slot,),
                ).fetchone()
            )

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """A run's tool calls, oldest first (``state`` says which finished)."""
        p = self.mark
        with self.pool.read() as conn:
            found = conn.execute(
                f"SELECT {COLUMNS} FROM tool_calls WHERE run_id = {p} ORDER BY at", (run_id,)
            ).fetchall()
        return [call(row) for row in found]

    def begin(self, key: str, *, slot: str, run_id: str, agent: str, tool: str, args: Any) -> None:
        """Record that a call is about to run (committed before the tool is called)."""
        p = self.mark
        with self.pool.write() as conn:
            conn.execute(
                "INSERT INTO tool_calls (key, run_id, agent, tool, args, result, at, slot, state) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, '', {p}, {p}, 'started') {STARTED}",
                (key, run_id, agent, tool, shown(args), self.clock(), slot),
            )

    def record(
        self, key: str, *, run_id: str, agent: str, tool: str, args: Any, result: str
    ) -> None:
        """Record a call's result, or a person's decision about a call in doubt (the first
        finished record wins)."""
        p = self.mark
        with self.pool.write() as conn:
            conn.execute(
                "INSERT INTO tool_calls (key, run_id, agent, tool, args, result, at, state) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, 'done') {FINISHED}",
                (key, run_id, agent, tool, shown(args), result, self.clock()),
            )

    def failed(self, key: str, error: str) -> None:
        """The tool raised: the call is over, not in doubt (it runs again if the node does)."""
        p = self.mark
        with self.pool.write() as conn:
            conn.execute(
                f"UPDATE tool_calls SET state = 'failed', result = {p} WHERE key = {p}"
                " AND state = 'started'",
                (error, key),
            )


@dataclass
class SqliteToolCalls(ToolCalls):
    """The ``tool_calls`` table of a SQLite workspace."""

    pool: ConnectionPool

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
