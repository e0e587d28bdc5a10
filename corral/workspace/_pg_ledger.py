"""The usage ledger on Postgres: the SQLite ledger's rules, made atomic across machines.

Every change to the running totals (reserve, record, settle, release, grants) holds
one transaction-scoped advisory lock, so a reservation's checks and its write see
every other process's reservations: processes on many machines sharing a daily budget
cannot together pass it by more than one call's difference between estimate and actual.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from corral.workspace import _budget as rules
from corral.workspace._account import Scope, scopes
from corral.workspace._budget import Ask
from corral.workspace._pg_db import LEDGER_LOCK, Conn, PgPool, rows
from corral.workspace._replies import PgReplies, Recorded, Reply, hold, keep
from corral.workspace._types import NO_RUN_USAGE, TEAM, BudgetLimits, RunUsage, Settled


@dataclass
class PgLedger:
    """The ``usage`` table and the budget checks on it."""

    pool: PgPool
    clock: Callable[[], float] = field(default=time.time)

    def day(self) -> str:
        """Today (UTC), the unit of the daily budgets."""
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")

    def publish_limits(
        self, limits: Mapping[str, BudgetLimits], team: BudgetLimits | None = None
    ) -> None:
        """Record the agents' daily limits (and the team's) for ``corral budget``."""
        found = [
            (agent, b.daily_tokens, b.daily_cost, b.alert_threshold)
            for agent, b in limits.items()
            if b.daily_tokens or b.daily_cost
        ]
        if team is not None:
            found.append(
                (TEAM, team.team_daily_tokens, team.team_daily_cost, team.team_alert_threshold)
            )
        with self.pool.write() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO budget_limits VALUES (%s, %s, %s, %s) ON CONFLICT (agent) DO UPDATE "
                "SET daily_tokens = excluded.daily_tokens, daily_cost_usd = "
                "excluded.daily_cost_usd, alert_threshold = excluded.alert_threshold",
                found,
            )

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
        with self.pool.write(LEDGER_LOCK) as conn:
            task, mine, team, run = (_totals(conn, *scope) for scope in moved)
            grant = _granted(conn, task_key)
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
            _add(conn, moved, tokens, cost, 1)
            row = conn.execute(
                "INSERT INTO usage (run_id, task_key, agent, model, day, status, reserved, "
                "reserved_cost, input_tokens, output_tokens, cached_tokens, cost_usd, "
                "cost_known, latency_ms, at) VALUES (%s, %s, %s, %s, %s, 'reserved', %s, %s, "
                "0, 0, 0, 0, 1, 0, %s) RETURNING id",
                (run_id, task_key, agent, model, day, tokens, cost, self.clock()),
            ).fetchone()
            assert row is not None  # INSERT ... RETURNING always returns the row
            if call is not None:
                hold(conn, PgReplies.mark, call, run_id=run_id, row=int(row[0]), at=self.clock())
            return int(row[0])

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
        """Record a call that had no limit to reserve against (one transaction), and
        ``reply``, the answer a re-executed task replays."""
        day = self.day()
        with self.pool.write(LEDGER_LOCK) as conn:
            made = conn.execute(
                "INSERT INTO usage (run_id, task_key, agent, model, day, status, reserved, "
                "reserved_cost, input_tokens, output_tokens, cached_tokens, cost_usd, "
                "cost_known, latency_ms, at, content) VALUES (%s, %s, %s, %s, %s, 'settled', 0, "
                "0, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
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
                keep(conn, PgReplies.mark, reply, int(made[0]), self.clock())
            used, paid, spent = rules.settled(agent, day, input_tokens + output_tokens, cost)
            _add(conn, scopes(run_id, task_key, agent, day), used, paid, 1, spent=spent)

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
        with self.pool.write(LEDGER_LOCK) as conn:
            if reply is not None:
                keep(conn, PgReplies.mark, reply, row, self.clock())
            found = conn.execute(
                "UPDATE usage SET status = 'settled', model = %s, input_tokens = %s, "
                "output_tokens = %s, cached_tokens = %s, cost_usd = %s, cost_known = %s, "
                "latency_ms = %s, content = %s WHERE id = %s "
                "RETURNING day, task_key, reserved, reserved_cost, run_id",
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
            _add(conn, scopes(run_id, task_key, agent, day), used, paid, 0, spent=spent)
            return rules.alerts(
                agent,
                day,
                limits,
                lambda scope, key, day: _totals(conn, scope, key, day),
                lambda who, day, layer: bool(
                    conn.execute(
                        "INSERT INTO budget_alerts VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                        (who, day, layer),
                    ).rowcount
                ),
            )

    def release(self, row: int) -> None:
        """Give back the reservation of a call that failed before it was answered."""
        with self.pool.write(LEDGER_LOCK) as conn:
            found = conn.execute(
                "UPDATE usage SET status = 'released' WHERE id = %s AND status = 'reserved' "
                "RETURNING agent, day, task_key, reserved, reserved_cost, run_id",
                (row,),
            ).fetchone()
            if found is not None:
                agent, day, task_key, reserved, reserved_cost, run_id = found
                moved = scopes(run_id, task_key, agent, day)
                _add(conn, moved, -int(reserved), -float(reserved_cost), -1)

    def reply(self, key: str) -> Recorded | None:
        """What is recorded of the model call ``key`` (see ``_replies``)."""
        return PgReplies(self.pool).find(key)

    def grant(
        self, *, agent: str, parent: str, limit: int | None, asks: list[Ask]
    ) -> dict[str, int]:
        """Carve grants for a round's subtasks from ``parent``'s remaining task budget, in
        one transaction; ``BudgetExceeded`` if too little is left (the SQLite rules)."""
        with self.pool.write(LEDGER_LOCK) as conn:
            used = _totals(conn, "task", parent, "")[0]
            return _carve(conn, agent=agent, parent=parent, limit=limit, used=used, asks=asks)

    def settle_grants(self, parent: str, children: list[str]) -> None:
        """At a round's join: each child's grant becomes what the child spent."""
        if not children:
            return
        with self.pool.write(LEDGER_LOCK) as conn:
            for child in children:
                found = conn.execute(
                    "UPDATE task_grants SET settled = 1 WHERE task_key = %s AND parent = %s "
                    "AND settled = 0 RETURNING tokens",
                    (child, parent),
                ).fetchone()
                if found is None:
                    continue
                spent = _totals(conn, "task", child, "")[0]
                _move(conn, parent, spent - int(found[0]))

    def run_usage(self, run_id: str, *, conn: Conn | None = None) -> RunUsage:
        """A run's account: tokens, calls and cost of its settled calls."""
        with self.pool.reading(conn) as db:
            return usage_by_run(db, [run_id]).get(run_id, NO_RUN_USAGE)

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """A run's model calls, oldest first."""
        with self.pool.read() as conn:
            found = rows(
                conn.execute(
                    "SELECT agent, model, status, input_tokens, output_tokens, cached_tokens, "
                    "cost_usd, cost_known, latency_ms, at, task_key, content FROM usage "
                    "WHERE run_id = %s ORDER BY id",
                    (run_id,),
                )
            )
        for row in found:
            row["content"] = json.loads(row["content"]) if row["content"] else None
        return found

    def report(self, day: str) -> list[dict[str, Any]]:
        """Per agent, and the team: tokens and cost used on ``day``, limits, percentages."""
        with self.pool.read() as conn:
            found = conn.execute(  # the agents' ``spent`` day totals: a few rows
                "SELECT key, tokens, cost, COALESCE(unknown, 0), calls FROM usage_totals "
                "WHERE scope = 'spent' AND day = %s ORDER BY key",
                (day,),
            ).fetchall()
            limits = {r[0]: r[1:] for r in conn.execute("SELECT * FROM budget_limits")}
        lines = [(a, int(t), float(c), int(u), int(n)) for a, t, c, u, n in found]
        return rules.report(lines, limits)


def usage_by_run(conn: Conn, run_ids: list[str]) -> dict[str, RunUsage]:
    """The account of each run that made a settled call."""
    found: dict[str, RunUsage] = {}
    for run_id, tokens_in, tokens_out, calls, cost, unknown in conn.execute(
        "SELECT run_id, SUM(input_tokens), SUM(output_tokens), count(*), SUM(cost_usd), "
        "SUM(1 - cost_known) FROM usage WHERE run_id = ANY(%s) AND status = 'settled' "
        "GROUP BY run_id",
        (run_ids,),
    ):
        found[run_id] = rules.run_usage(tokens_in, tokens_out, calls, cost, unknown)
    return found


def _totals(conn: Conn, scope: str, key: str, day: str) -> tuple[int, float, int]:
    """Tokens, cost and calls so far (reservations included) of one scope."""
    row = conn.execute(
        "SELECT tokens, cost, calls FROM usage_totals WHERE scope = %s AND key = %s AND day = %s",
        (scope, key, day),
    ).fetchone()
    return (int(row[0]), float(row[1]), int(row[2])) if row else (0, 0.0, 0)


def _add(
    conn: Conn,
    moved: Sequence[Scope],
    tokens: int,
    cost: float,
    calls: int,
    *,
    spent: tuple[str, str, int, float, bool] | None = None,
) -> None:
    """Move the running totals of every scope by the same amounts, and with ``spent``
    (agent, day, tokens, cost, cost known), that agent's day of settled calls by one call."""
    found = [(*scope, tokens, cost, calls, 0) for scope in moved]
    if spent is not None:
        agent, day, used, paid, known = spent
        found.append(("spent", agent, day, used, paid, 1, int(not known)))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO usage_totals VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (scope, "
            "key, day) DO UPDATE SET tokens = usage_totals.tokens + excluded.tokens, "
            "cost = usage_totals.cost + excluded.cost, calls = usage_totals.calls + "
            "excluded.calls, unknown = COALESCE(usage_totals.unknown, 0) + excluded.unknown",
            found,
        )


def _granted(conn: Conn, task_key: str) -> int | None:
    row = conn.execute("SELECT tokens FROM task_grants WHERE task_key = %s", (task_key,)).fetchone()
    return None if row is None else int(row[0])


def _carve(
    conn: Conn, *, agent: str, parent: str, limit: int | None, used: int, asks: Sequence[Ask]
) -> dict[str, int]:
    """Grants for ``asks`` out of ``parent``'s remaining budget (``_budget.split``)."""
    grants = rules.split(
        agent=agent,
        parent=parent,
        limit=limit,
        used=used,
        asks=asks,
        granted=lambda key: _granted(conn, key),
    )
    if not grants:
        return {}
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO task_grants (task_key, parent, tokens, settled) VALUES (%s, %s, %s, 0)",
            [(key, parent, tokens) for key, tokens in grants.items()],
        )
    _move(conn, parent, sum(grants.values()))
    return grants


def _move(conn: Conn, task_key: str, tokens: int) -> None:
    conn.execute(
        "INSERT INTO usage_totals VALUES ('task', %s, '', %s, 0, 0) ON CONFLICT (scope, key, day) "
        "DO UPDATE SET tokens = usage_totals.tokens + excluded.tokens",
        (task_key, tokens),
    )
