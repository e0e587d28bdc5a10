"""Circuit breakers: an agent that keeps failing is skipped until it proves itself again.

State lives in the workspace (``breakers`` table), so every run and process sees it.
Closed: calls go through; ``failures`` consecutive failures within ``window_seconds``
open it. Open: calls skip straight to the fallback or escalation for
``cooldown_seconds``. Then one caller gets a probe (half-open): success closes the
breaker, failure opens it again, and a probe that does neither within a cooldown is
given to the next caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from corral.workspace._db import ConnectionPool
from corral.workspace._tool_calls import Pool
from corral.workspace._types import BreakerPolicy, Verdict


@dataclass
class Breakers:
    """The ``breakers`` table. One logic for every backend: they differ in their pool,
    their placeholder (``mark``) and how a transition is made exclusive (``locked``)."""

    pool: Pool
    clock: Callable[[], float] = field(default=time.time)
    mark: ClassVar[str] = "?"

    def locked(self, agent: str) -> AbstractContextManager[Any]:
        """A write transaction no other transition of ``agent``'s breaker runs beside."""
        return self.pool.write()

    def admit(self, agent: str, spec: BreakerPolicy) -> Verdict:
        """May a call of ``agent`` go through? ``probe``: yes, as the half-open probe. A
        probe holds the breaker for one cooldown: if it proved nothing by then (a guard
        stopped it, its run was cancelled or its process died), the next caller probes."""
        now, p = self.clock(), self.mark
        with self.locked(agent) as conn:
            row = conn.execute(
                f"SELECT state, open_until FROM breakers WHERE agent = {p}", (agent,)
            ).fetchone()
            if row is None or row[0] == "closed":
                return "closed"
            if row[1] <= now:  # open and cooled down, or a probe that never told
                conn.execute(
                    f"UPDATE breakers SET state = 'probing', open_until = {p} WHERE agent = {p}",
                    (now + spec.cooldown_seconds, agent),
                )
                return "probe"
            return "open"  # open, or another caller is probing

    def succeeded(self, agent: str) -> bool:
        """Record a success; True if this closed an open (probing) breaker."""
        with self.locked(agent) as conn:
            row = conn.execute(
                f"UPDATE breakers SET state = 'closed', failures = 0 WHERE agent = {self.mark} "
                "AND (state != 'closed' OR failures > 0) RETURNING 1",
                (agent,),
            ).fetchone()
        return row is not None

    def failed(self, agent: str, spec: BreakerPolicy) -> bool:
        """Record a failure; True if this opened the breaker."""
        now, p = self.clock(), self.mark
        upsert = (
            f"INSERT INTO breakers VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (agent) DO "
            "UPDATE SET state = excluded.state, failures = excluded.failures, "
            "first_failure = excluded.first_failure, open_until = excluded.open_until"
        )
        with self.locked(agent) as conn:
            row = conn.execute(
                f"SELECT state, failures, first_failure FROM breakers WHERE agent = {p}", (agent,)
            ).fetchone()
            state, failures, first = row if row else ("closed", 0, now)
            if state == "probing" or (
                state == "closed"
                and failures + 1 >= spec.failures
                and now - first <= spec.window_seconds
            ):
                conn.execute(
                    upsert, (agent, "open", failures + 1, first, now + spec.cooldown_seconds)
                )
                return True
            if state == "closed":
                fresh = failures == 0 or now - first > spec.window_seconds
                conn.execute(
                    upsert,
                    (agent, "closed", 1 if fresh else failures + 1, now if fresh else first, 0),
                )
            return False

    def states(self) -> dict[str, dict[str, float | str]]:
        """Every breaker that is not closed and clean: agent -> state, failures, until."""
        with self.pool.read() as conn:
            rows = conn.execute(
                "SELECT agent, state, failures, open_until FROM breakers WHERE "
                "state != 'closed' OR failures > 0"
            ).fetchall()
        return {a: {"state": s, "failures": f, "open_until": u} for a, s, f, u in rows}


@dataclass
class SqliteBreakers(Breakers):
    """The ``breakers`` table of a SQLite workspace (a write transaction is exclusive)."""

    pool: ConnectionPool

    def __post_init__(self) -> None:
        self.pool.ensure(
            "breakers",
            {
                "agent": str,
                "state": str,
                "failures": int,
                "first_failure": float,
                "open_until": float,
            },
            pk="agent",
        )
