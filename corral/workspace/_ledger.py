"""The usage ledger: every model call is a row, reserved before the call and settled after.

A reservation (the call's input tokens plus its maximum output) is checked against
every budget layer of the agent and the team inside one ``BEGIN IMMEDIATE``
transaction (running totals per task, agent-day and team-day keep each check to a
primary-key read), so many runs in many processes sharing the workspace cannot together
pass a limit by more than one call's difference between estimate and actual. The
settlement records the real usage, cost and latency, and raises each alert (agent or
team, once a day) when spending crosses its threshold.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from corral.workspace import _budget as rules
from corral.workspace._account import add, outdated, scopes, spent_on, totals, upgrade, usage_by_run
from corral.workspace._budget import Ask
from corral.workspace._db import ConnectionPool
from corral.workspace._grants import carve, give_back, granted
from corral.workspace._replies import Recorded, Reply, SqliteReplies, hold, keep
from corral.workspace._types import NO_RUN_USAGE, TEAM, BudgetLimits, RunUsage, Settled


@dataclass
class SqliteLedger:
    """The ``usage`` table and the budget checks on it."""

    pool: ConnectionPool
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        with self.pool.connection() as conn:
            old = outdated(conn)
        if old:  # opening an up-to-date file writes nothing here
            with self.pool.write() as conn:
                upgrade(conn)
        self.replies = SqliteReplies(self.pool)
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
            conn.executemany("INSERT OR REPLACE INTO budget_limits VALUES (?, ?, ?, ?)", rows)

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
        day = self.day()
        moved = scopes(run_id, task_key, agent, day)
        with self.pool.write() as conn:
            task, mine, team, run = (totals(conn, *scope) for scope in moved)
            grant = granted(conn, task_key)
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
            add(conn, moved, tokens, cost, 1)
            row = int(
                conn.execute(
                    "INSERT INTO usage (run_id, task_key, agent, model, day, status, reserved, "
                    "reserved_cost, input_tokens, output_tokens, cached_tokens, cost_usd, "
                    "cost_known, latency_ms, at) VALUES (?, ?, ?, ?, ?, 'reserved', ?, ?, 0, 0, 0, "
                    "0, 1, 0, ?) RETURNING id",
                    (run_id, task_key, agent, model, day, tokens, cost, self.clock()),
                ).fetchone()[0]
            )
            if call is not None:
                hold(conn, SqliteReplies.mark, call, run_id=run_id, row=row, at=self.clock())
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
        day = self.day()
        with self.pool.write() as conn:
            made = conn.execute(
                "INSERT INTO usage (run_id, task_key, agent, model, day, status, reserved, "
                "reserved_cost, input_tokens, output_tokens, cached_tokens, cost_usd, "
                "cost_known, latency_ms, at, content) VALUES (?, ?, ?, ?, ?, 'settled', 0, 0, ?, "
                "?, ?, ?, ?, ?, ?, ?)",
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
            )
            if reply is not None:
                keep(conn, SqliteReplies.mark, reply, made.lastrowid, self.clock())
            used, paid, spent = rules.settled(agent, day, input_tokens + output_tokens, cost)
            add(conn, scopes(run_id, task_key, agent, day), used, paid, 1, spent=spent)

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
        with self.pool.write() as conn:
            if reply is not None:
                keep(conn, SqliteReplies.mark, reply, row, self.clock())
            day, task_key, reserved, reserved_cost, run_id = conn.execute(
                "UPDATE usage SET status = 'settled', model = ?, input_tokens = ?, "
                "output_tokens = ?, cached_tokens = ?, cost_usd = ?, cost_known = ?, "
                "latency_ms = ?, content = ? WHERE id = ? "
                "RETURNING day, task_key, reserved, reserved_cost, run_id",
                (
                    model,
                    *rules.paid(input_tokens, output_tokens, cached_tokens, cost, latency_ms),
                    content,
                    row,
                ),
            ).fetchone()
            used, paid, spent = rules.settled(
                agent,
                day,
                input_tokens + output_tokens,
                cost,
                reserved=reserved,
                held=reserved_cost,
            )
            add(conn, scopes(run_id, task_key, agent, day), used, paid, 0, spent=spent)
            return rules.alerts(
                agent,
                day,
                limits,
                lambda scope, key, day: totals(conn, scope, key, day),
                lambda who, day, layer: bool(
                    conn.execute(
                        "INSERT OR IGNORE INTO budget_alerts VALUES (?, ?, ?)", (who, day, layer)
                    ).rowcount
                ),
            )

    def release(self, row: int) -> None:
        """Give back the reservation of a call that failed before it was answered."""
        with self.pool.write() as conn:
            found = conn.execute(
                "UPDATE usage SET status = 'released' WHERE id = ? AND status = 'reserved' "
                "RETURNING agent, day, task_key, reserved, reserved_cost, run_id",
                (row,),
            ).fetchone()
            if found is not None:
                agent, day, task_key, reserved, reserved_cost, run_id = found
                add(
                    conn,
                    scopes(run_id, task_key, agent, day),
                    -reserved,
                    -reserved_cost,
                    -1,
                )

    def reply(self, key: str) -> Recorded | None:
        """What is recorded of the model call ``key`` (see ``_replies``)."""
        return self.replies.find(key)

    def grant(
        self, *, agent: str, parent: str, limit: int | None, asks: list[Ask]
    ) -> dict[str, int]:
        """Carve grants for a round's subtasks from ``parent``'s remaining task budget, in
        one transaction; ``BudgetExceeded`` if too little is left (see ``_grants``)."""
        with self.pool.write() as conn:
            used = totals(conn, "task", parent, "")[0]
            return carve(conn, agent=agent, parent=parent, limit=limit, used=used, asks=asks)

    def settle_grants(self, parent: str, children: list[str]) -> None:
        """At a round's join: each child's grant becomes what the child spent."""
        if children:
            with self.pool.write() as conn:
                give_back(conn, parent, children)

    def run_usage(self, run_id: str, *, conn: sqlite3.Connection | None = None) -> RunUsage:
        """A run's account: tokens, calls and cost of its settled calls."""
        with self.pool.reading(conn) as db:
            return usage_by_run(db, [run_id]).get(run_id, NO_RUN_USAGE)

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """A run's model calls, oldest first."""
        with self.pool.read() as conn:
            cursor = conn.execute(
                "SELECT agent, model, status, input_tokens, output_tokens, "
                "cached_tokens, cost_usd, cost_known, latency_ms, at, task_key, content "
                "FROM usage WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:
            row["content"] = json.loads(row["content"]) if row["content"] else None
        return rows

    def report(self, day: str) -> list[dict[str, Any]]:
        """Per agent, and the team: tokens and cost used on ``day``, limits, percentages."""
        with self.pool.read() as conn:
            rows = spent_on(conn, day)
            limits = {r[0]: r[1:] for r in conn.execute("SELECT * FROM budget_limits")}
        return rules.report(rows, limits)
