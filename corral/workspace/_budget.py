"""The ledger's rules, the same on every backend (pure: no SQL, no locking).

The budget layers a reservation is checked against and their order, the alerts a
settlement crosses, the split of a round's grants, what a settlement moves, and the
rows of ``corral budget``. Each backend reads and writes its own SQL around these,
under its own lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on Postgres).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from corral.errors import BudgetExceeded
from corral.workspace._types import TEAM, Alert, BudgetLimits, RunUsage, Settled

Totals = tuple[int, float, int]
"""Tokens, cost and calls so far (reservations included) of one scope."""

Ask = tuple[str, float | None, int | None]
"""A subtask's task key, and the ``share`` or ``tokens`` it asks for (neither: equal)."""

Spent = tuple[str, str, int, float, bool]
"""An agent, a day, and one settled call's tokens, cost and whether its cost is known."""


def check(
    *,
    agent: str,
    limits: BudgetLimits,
    tokens: int,
    cost: float,
    task: Totals,
    grant: int | None,
    run: Totals,
    mine: Totals,
    team: Totals,
) -> None:
    """Raise ``BudgetExceeded`` at the first budget layer a reservation would pass."""
    hard, team_hard = limits.hard_stop, limits.team_hard_stop
    checks: list[tuple[str, float | None, float, float, bool]] = [
        ("task_tokens", limits.task_tokens, task[0], tokens, True),
        ("grant_tokens", grant, task[0], tokens, True),
        ("max_run_tokens", limits.run_tokens, run[0], tokens, True),
        ("max_run_cost_usd", limits.run_cost, run[1], cost, True),
        ("task_calls", limits.task_calls, task[2], 1, True),
        ("daily_tokens", limits.daily_tokens, mine[0], tokens, hard),
        ("daily_cost_usd", limits.daily_cost, mine[1], cost, hard),
        ("team_daily_tokens", limits.team_daily_tokens, team[0], tokens, team_hard),
        ("team_daily_cost_usd", limits.team_daily_cost, team[1], cost, team_hard),
    ]
    for layer, limit, used, wanted, stop in checks:
        if stop and limit is not None and used + wanted > limit:
            raise BudgetExceeded(agent=agent, layer=layer, limit=limit, used=used, requested=wanted)


def paid(
    input_tokens: int, output_tokens: int, cached_tokens: int, cost: float | None, latency: float
) -> tuple[int, int, int, float, int, float]:
    """A settled call's usage columns: tokens, cost (0 when unknown), cost known, latency."""
    return (input_tokens, output_tokens, cached_tokens, cost or 0.0, int(cost is not None), latency)


def settled(
    agent: str, day: str, used: int, cost: float | None, *, reserved: int = 0, held: float = 0.0
) -> tuple[int, float, Spent]:
    """What settling a call moves: tokens and cost beyond its reservation (``reserved``
    tokens, ``held`` cost), and the agent's day of settled calls."""
    return used - reserved, (cost or 0.0) - held, (agent, day, used, cost or 0.0, cost is not None)


def alerts(
    agent: str,
    day: str,
    limits: BudgetLimits,
    totals: Callable[[str, str, str], Totals],
    mark: Callable[[str, str, str], bool],
) -> Settled:
    """The alerts a settlement crossed: agent's then team's daily tokens and cost at their
    threshold; ``mark`` records one (who, day, layer) and says whether it was new."""
    found: list[Alert] = []
    agent_tokens = None
    for who, tokens_limit, cost_limit, threshold in (
        (agent, limits.daily_tokens, limits.daily_cost, limits.alert_threshold),
        (TEAM, limits.team_daily_tokens, limits.team_daily_cost, limits.team_alert_threshold),
    ):
        if tokens_limit is None and cost_limit is None:
            continue
        used = totals("team" if who == TEAM else "agent", who, day)
        if who == agent and tokens_limit is not None:
            agent_tokens = used[0]
        for layer, limit, spent in (
            ("daily_tokens", tokens_limit, used[0]),
            ("daily_cost_usd", cost_limit, used[1]),
        ):
            if limit is not None and spent >= threshold * limit and mark(who, day, layer):
                found.append(Alert(who, day, layer, spent, limit, threshold))
    return Settled(found, agent_tokens)


def split(
    *,
    agent: str,
    parent: str,
    limit: int | None,
    used: int,
    asks: Sequence[Ask],
    granted: Callable[[str], int | None],
) -> dict[str, int]:
    """Grants for ``asks`` out of ``parent``'s remaining budget (none if it has no limit):
    its task limit or its own grant, whichever is smaller, less ``used``; explicit shares
    or tokens first, equal shares of the rest. ``granted`` reads a task's grant."""
    caps = [c for c in (limit, granted(parent)) if c is not None]
    fresh = [a for a in asks if granted(a[0]) is None]  # a resumed round keeps its grants
    if not caps or not fresh:
        return {}
    cap = min(caps)
    left = cap - used
    fixed = {k: tokens or int((share or 0) * left) for k, share, tokens in fresh if share or tokens}
    rest = [key for key, share, tokens in fresh if not (share or tokens)]
    free = left - sum(fixed.values())
    each = free // len(rest) if rest else 0
    if left <= 0 or free < 0 or (rest and each <= 0) or any(v <= 0 for v in fixed.values()):
        raise BudgetExceeded(
            agent=agent,
            layer="task_tokens (grants to subtasks)",
            limit=cap,
            used=used,
            requested=max(sum(fixed.values()), 1) + (len(rest) if rest else 0),
        )
    return fixed | dict.fromkeys(rest, each)


def run_usage(tokens_in: Any, tokens_out: Any, calls: Any, cost: Any, unknown: Any) -> RunUsage:
    """A run's account from its settled calls' sums (no cost if any call's is unknown)."""
    return RunUsage(
        input_tokens=int(tokens_in),
        output_tokens=int(tokens_out),
        llm_calls=int(calls),
        cost_usd=None if unknown else float(cost),
    )


def line(
    agent: str, tokens: int, cost: float, unknown: int, calls: int, *, limit: tuple[Any, ...] | None
) -> dict[str, Any]:
    """One line of ``corral budget``: use, limits and percentages."""
    token_limit = limit[0] if limit else None
    cost_limit = limit[1] if limit else None
    return {
        "agent": agent,
        "calls": calls,
        "tokens": tokens,
        "token_limit": token_limit,
        "token_pct": round(100 * tokens / token_limit, 1) if token_limit else None,
        "cost_usd": None if unknown else round(cost, 6),
        "cost_limit": cost_limit,
        "cost_pct": round(100 * cost / cost_limit, 1) if cost_limit and not unknown else None,
    }


def report(
    spent: Sequence[tuple[str, int, float, int, int]], limits: Mapping[str, tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """``corral budget``: a line per agent (tokens, cost, unknown, calls), then the team's."""
    out = [line(*each, limit=limits.get(each[0])) for each in spent]
    out.append(
        line(
            "team",
            sum(r[1] for r in spent),
            sum(r[2] for r in spent),
            sum(r[3] for r in spent),
            sum(r[4] for r in spent),
            limit=limits.get(TEAM),
        )
    )
    return out
