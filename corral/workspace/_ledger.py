"""The usage ledger: every model call is a row, reserved before the call and settled after.

A reservation (the call's input tokens plus its maximum output) is checked against
every budget layer of the agent and the team inside one exclusive write transaction
(running totals per task, agent-day and team-day keep each check to a primary-key
read), so many runs in many processes sharing the workspace cannot together pass a
limit by more than one call's difference between estimate and actual. The settlement
records the real usage, cost and latency, and raises each alert (agent or team, once a
day) when spending crosses its threshold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from corral.workspace import _budget as rules
from corral.workspace._account import (
    add,
    many,
    outdated,
    scopes,
    spent_on,
    totals,
    upgrade,
    usage_by_run,
)
from corral.workspace._budget import Ask
from corral.workspace._db import ConnectionPool
from corral.workspace._grants import carve, give_back, granted
from corral.workspace._replies import Recorded, Replies, Reply, SqliteReplies, hold, keep
from corral.workspace._tool_calls import Pool
from corral.workspace._types import NO_RUN_USAGE, TEAM, BudgetLimits, RunUsage, Settled

_RESERVE = (
    "INSERT INTO usage (run_id, task_key, agent, model, day, status, reserved, reserved_cost, "
    "input_tokens, output_tokens, cached_tokens, cost_usd, cost_known, latency_ms, at) VALUES "
    "({p}, {p}, {p}, {p}, {p}, 'reserved', {p}, {p}, 0, 0, 0, 0, 1, 0, {p}) RETURNING id"
)
_RECORD = (
    "INSERT INTO usage (run_id, task_key, agent, model, day, status, reserved, reserved_cost, "
    "input_tokens, output_tokens, cached_tokens, cost_usd, cost_known, latency_ms, at, content) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, 'settled', 0, 0, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) "
    "RETURNING id"
)
_SETTLE = (
    "UPDATE usage SET status = 'settled', model = {p}, input_tokens = {p}, output_tokens = {p}, "
    "cached_tokens = {p}, cost_usd = {p}, cost_known = {p}, latency_ms = {p}, content = {p} "
    "WHERE id = {p} RETURNING day, task_key, reserved, reserved_cost, run_id"
)
_RELEASE = (
    "UPDATE usage SET status = 'released' WHERE id = {p} AND status = 'reserved' "
    "RETURNING agent, day, task_key, reserved, reserved_cost, run_id"
)
_LIMITS = (
    "INSERT INTO budget_limits VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (agent) DO UPDATE SET "
    "daily_tokens = excluded.daily_tokens, daily_cost_usd = excluded.daily_cost_usd, "
    "alert_threshold = excluded.alert_threshold"
)
_CALLS = (
    "SELECT agent, model, status, input_tokens, output_tokens, cached_tokens, cost_usd, "
    "cost_known, latency_ms, at, task_key, content FROM usage WHERE run_id = {p} ORDER BY id"
)


class LedgerPool(Pool, Protocol):
    """A pool the ledger can also read through a caller's snapshot (``reading``)."""

    def reading(self, conn: Any) -> AbstractContextManager[Any]: ...


@dataclass
class UsageLedger:
    """The ``usage`` table and the budget checks on it. One logic for every backend: they
    differ in their pool, their placeholder (``mark``) and how a change to the running
    totals is made exclusive (``locked``)."""

    pool: LedgerPool
    clock: Callable[[], float] = field(default=time.time)
    mark: ClassVar[str] = "?"
    replies: ClassVar[type[Replies]] = Replies
    """The model replies' table on this backend (``reply``)."""

    def locked(self) -> AbstractContextManager[Any]:
        """A write transaction no other change to the running totals runs beside."""
        return self.pool.write()

    def day(self) -> str:
        """Today (UTC), the unit of the daily budgets."""
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")

    def publish_limits(
        self, limits: Mapping[str, BudgetLimits], team: BudgetLimits | None = None
    ) -> None:
        """Record the agents' daily limits (and the team's) for ``corral budget``."""
        rows = [
            (agent, b.daily_tokens, b.daily_cost, b.alert_threshold)
            for agent, b in limits.items()
            if b.daily_tokens or b.daily_cost
        ]
        if team is not None:
            rows.append(
                (TEAM, team.team_daily_tokens, team.team_daily_cost, team.team_alert_threshold)
            )
        with self.pool.write() as conn:
            many(conn, _LIMITS.format(p=self.mark), rows)

    def reserve(
        self,
        *,
        run_id: str,
        task_key: str,
        agent: str,
        model: str,
        tokens: int,
        cost: float,
        limits: BudgetLimits,
        call: str | None = None,
    ) -> int:
        """Reserve ``tokens`` (and ``cost``) for one call (its reply key: ``call``); its
        row id, or ``BudgetExceeded``."""
        day, p = self.day(), self.mark
        moved = scopes(run_id, task_key, agent, day)
        with self.locked() as conn:
            task, mine, team, run = (totals(conn, p, *scope) for scope in moved)
            grant = granted(conn, p, task_key)
            rules.check(
                agent=agent,
                limits=limits,
                tokens=tokens,
                cost=cost,
                task=task,
                grant=grant,
                run=run,
                mine=mine,
                team=team,
            )
            add(conn, p, moved, tokens, cost, calls=1)
            row = int(
                conn.execute(
                    _RESERVE.format(p=p),
                    (run_id, task_key, agent, model, day, tokens, cost, self.clock()),
                ).fetchone()[0]
            )
            if call is not None:
                hold(conn, p, call, run_id=run_id, row=row, at=self.clock())
            return row

    def record(
        self,
        *,
        run_id: str,
        task_key: str,
        agent: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int,
        cost: float | None,
        latency_ms: float,
        content: str | None = None,
        reply: Reply | None = None,
    ) -> None:
        """Record a call that had no limit to reserve against (one transaction);
        ``content`` is what the trace keeps of its prompt and answer (JSON), ``reply``
        the answer a re-executed task replays."""
        day, p = self.day(), self.mark
        with self.locked() as conn:
            made = conn.execute(
                _RECORD.format(p=p),
                (
                    run_id,
                    task_key,
                    agent,
                    model,
                    day,
                    *rules.paid(input_tokens, output_tokens, cached_tokens, cost, latency_ms),
                    self.clock(),
                    content,
                ),
            ).fetchone()
            if reply is not None and made is not None:
                keep(conn, p, reply, int(made[0]), self.clock())
            used, paid, spent = rules.settled(agent, day, input_tokens + output_tokens, cost)
            add(conn, p, scopes(run_id, task_key, agent, day), used, paid, calls=1, spent=spent)

    def settle(
        self,
        row: int,
        *,
        agent: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int,
        cost: float | None,
        latency_ms: float,
        limits: BudgetLimits,
        content: str | None = None,
        reply: Reply | None = None,
    ) -> Settled:
        """Record a call's real usage (and ``reply``, its answer); the alerts this crossed
        (each once a day)."""
        p = self.mark
        with self.locked() as conn:
            if reply is not None:
                keep(conn, p, reply, row, self.clock())
            found = conn.execute(
                _SETTLE.format(p=p),
                (
                    model,
                    *rules.paid(input_tokens, output_tokens, cached_tokens, cost, latency_ms),
                    content,
                    row,
                ),
            ).fetchone()
            if found is None:
                raise KeyError(f"no reserved call {row} in the ledger")
            day, task_key, reserved, reserved_cost, run_id = found
            used, paid, spent = rules.settled(
                agent,
                day,
                input_tokens + output_tokens,
                cost,
                reserved=int(reserved),
                held=float(reserved_cost),
            )
            add(conn, p, scopes(run_id, task_key, agent, day), used, paid, calls=0, spent=spent)
            return rules.alerts(
                agent,
                day,
                limits,
                lambda scope, key, day: totals(conn, p, scope, key, day),
                lambda who, day, layer: bool(
                    conn.execute(
                        f"INSERT INTO budget_alerts VALUES ({p}, {p}, {p}) ON CONFLICT DO NOTHING",
                        (who, day, layer),
                    ).rowcount
                ),
            )

    def release(self, row: int) -> None:
        """Give back the reservation of a call that failed before it was answered."""
        p = self.mark
        with self.locked() as conn:
            found = conn.execute(_RELEASE.format(p=p), (row,)).fetchone()
            if found is not None:
                agent, day, task_key, reserved, reserved_cost, run_id = found
                moved = scopes(run_id, task_key, agent, day)
                add(conn, p, moved, -int(reserved), -float(reserved_cost), calls=-1)

    def reply(self, key: str) -> Recorded | None:
        """What is recorded of the model call ``key`` (see ``_replies``)."""
        return self.replies(self.pool).find(key)

    def forget(self, keys: list[str]) -> None:
        """Replay none of the model calls ``keys`` (see ``_replies``); they stay billed."""
        if keys:
            self.replies(self.pool).forget(keys)

    def grant(
        self, *, agent: str, parent: str, limit: int | None, asks: list[Ask]
    ) -> dict[str, int]:
        """Carve grants for a round's subtasks from ``parent``'s remaining task budget, in
        one transaction; ``BudgetExceeded`` if too little is left (see ``_grants``)."""
        p = self.mark
        with self.locked() as conn:
            used = totals(conn, p, "task", parent, "")[0]
            return carve(conn, p, agent=agent, parent=parent, limit=limit, used=used, asks=asks)

    def settle_grants(self, parent: str, children: list[str]) -> None:
        """At a round's join: each child's grant becomes what the child spent."""
        if children:
            with self.locked() as conn:
                give_back(conn, self.mark, parent, children)

    def run_usage(self, run_id: str, *, conn: Any = None) -> RunUsage:
        """A run's account: tokens, calls and cost of its settled calls (in ``conn``'s
        snapshot if given)."""
        with self.pool.reading(conn) as db:
            return usage_by_run(db, self.mark, [run_id]).get(run_id, NO_RUN_USAGE)

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """A run's model calls, oldest first."""
        with self.pool.read() as conn:
            cursor = conn.execute(_CALLS.format(p=self.mark), (run_id,))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:
            row["content"] = json.loads(row["content"]) if row["content"] else None
        return rows

    def report(self, day: str) -> list[dict[str, Any]]:
        """Per agent, and the team: tokens and cost used on ``day``, limits, percentages."""
        with self.pool.read() as conn:
            rows = spent_on(conn, self.mark, day)
            limits = {r[0]: r[1:] for r in conn.execute("SELECT * FROM budget_limits")}
        return rules.report(rows, limits)


@dataclass
class SqliteLedger(UsageLedger):
    """The ledger of a SQLite workspace (a write transaction is exclusive): its tables
    are made, or brought up to date, on open."""

    pool: ConnectionPool

    def __post_init__(self) -> None:
        with self.pool.connection() as conn:
            old = outdated(conn)
        if old:  # opening an up-to-date file writes nothing here
            with self.pool.write() as conn:
                upgrade(conn)
        SqliteReplies(self.pool)  # makes its table
        ensure = self.pool.ensure
        ensure(
            "usage",
            {
                "id": int,
                "run_id": str,
                "task_key": str,
                "agent": str,
                "model": str,
                "day": str,
                "status": str,
                "reserved": int,
                "reserved_cost": float,
                "input_tokens": int,
                "output_tokens": int,
                "cached_tokens": int,
                "cost_usd": float,
                "cost_known": int,
                "latency_ms": float,
                "content": str,
                "at": float,
            },
            pk="id",
            indexes=[("run_id",)],
        )
        ensure(
            "usage_totals",
            {
                "scope": str,
                "key": str,
                "day": str,
                "tokens": int,
                "cost": float,
                "calls": int,
                "unknown": int,
            },
            pk=("scope", "key", "day"),
        )
        ensure(
            "task_grants",
            {"task_key": str, "parent": str, "tokens": int, "settled": int},
            pk="task_key",
        )
        ensure(
            "budget_alerts", {"agent": str, "day": str, "layer": str}, pk=("agent", "day", "layer")
        )
        ensure(
            "budget_limits",
            {"agent": str, "daily_tokens": int, "daily_cost_usd": float, "alert_threshold": float},
            pk="agent",
        )
