"""Guards that count across runs hold across processes sharing a Postgres workspace:
task creation under the rate and pending limits (with the cooldown), a shared daily
budget, and board claims (each task claimed by exactly one worker)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from corral import BudgetExceeded, BudgetLimits, GuardTripped, Limits, NewTask, open_workspace

PROCESSES = 4
THREADS = 3


def _create(url: str, worker: int, attempts: int, limits: Limits) -> tuple[int, int]:
    """Try to create ``attempts`` tasks one at a time; (created, refused)."""
    workspace = open_workspace(url)
    created = refused = 0

    def one(i: int) -> bool:
        task = NewTask(f"w{worker}-{i}", f"run{worker}", "a", 1, "do it", {})
        try:
            workspace.board.create([task], limits)
        except GuardTripped:
            workspace.board.refuse([task], "limit")
            return False
        return True

    with ThreadPoolExecutor(THREADS) as pool:
        for ok in pool.map(one, range(attempts)):
            created += ok
            refused += not ok
    workspace.close()
    return created, refused


def _spend(url: str, worker: int, attempts: int, limits: BudgetLimits) -> int:
    """Reserve and settle 100-token calls until refused; how many went through."""
    workspace = open_workspace(url)

    def one(i: int) -> int:
        try:
            row = workspace.ledger.reserve(
                run_id=f"run{worker}",
                task_key=f"t{worker}-{i}",
                agent=f"agent{worker % 2}",
                model="scripted",
                tokens=100,
                cost=0.0,
                limits=limits,
            )
        except BudgetExceeded:
            return 0
        workspace.ledger.settle(
            row,
            agent=f"agent{worker % 2}",
            model="scripted",
            input_tokens=60,
            output_tokens=40,
            cached_tokens=0,
            cost=0.0,
            latency_ms=1.0,
            limits=limits,
        )
        return 1

    with ThreadPoolExecutor(8) as pool:  # many reservations in flight at once
        made = sum(pool.map(one, range(attempts)))
    workspace.close()
    return made


def _claim(url: str, worker: int, ready: Any) -> list[str]:
    """Claim and finish tasks until none is left; the ids this worker finished. Every
    worker starts claiming once all are up (``ready``: a barrier), so a worker spawned
    first cannot finish the board before the others exist."""
    workspace = open_workspace(url)
    ready.wait(120)
    done = []
    while (task := workspace.board.claim_next(f"worker{worker}", 60.0)) is not None:
        assert workspace.board.complete(task.id, f"worker{worker}", {"by": worker})
        done.append(task.id)
    workspace.close()
    return done


def _pool() -> multiprocessing.pool.Pool:
    return multiprocessing.get_context("spawn").Pool(PROCESSES)


def test_task_rate_and_cooldown_hold_across_processes(postgres_url: str) -> None:
    open_workspace(postgres_url).close()  # the schema, once, before the race
    limits = Limits(rate_count=37, rate_seconds=3600, cooldown_seconds=600)
    with _pool() as pool:
        counts = pool.starmap(_create, [(postgres_url, w, 30, limits) for w in range(PROCESSES)])
    workspace = open_workspace(postgres_url)
    assert sum(c for c, _ in counts) == 37  # 120 attempts: exactly the limit, no more
    assert sum(r for _, r in counts) == PROCESSES * 30 - 37
    assert workspace.board.count(status="pending") == 37
    assert workspace.board.cooldown_until() is not None  # the trip started the cooldown
    workspace.close()


def test_pending_limit_holds_across_processes(postgres_url: str) -> None:
    open_workspace(postgres_url).close()
    limits = Limits(max_pending=23)
    with _pool() as pool:
        counts = pool.starmap(_create, [(postgres_url, w, 25, limits) for w in range(PROCESSES)])
    workspace = open_workspace(postgres_url)
    assert sum(c for c, _ in counts) == 23
    assert workspace.board.count(status="pending") == 23
    workspace.close()


def test_a_shared_daily_budget_holds_across_processes(postgres_url: str) -> None:
    open_workspace(postgres_url).close()
    limits = BudgetLimits(daily_tokens=12_000, team_daily_tokens=20_000)
    with _pool() as pool:
        made = pool.starmap(_spend, [(postgres_url, w, 70, limits) for w in range(PROCESSES)])
    workspace = open_workspace(postgres_url)
    report = {line["agent"]: line for line in workspace.ledger.report(workspace.ledger.day())}
    # 280 attempts; each agent stops at its 12,000 daily tokens, the team at 20,000:
    # 200 calls of 100 tokens, not one more.
    assert sum(made) == 200
    assert report["team"]["tokens"] == 20_000
    assert all(report[a]["tokens"] <= 12_000 for a in ("agent0", "agent1"))
    workspace.close()


def test_each_task_is_claimed_by_exactly_one_worker(postgres_url: str) -> None:
    workspace = open_workspace(postgres_url)
    ids = [f"t{i}" for i in range(400)]
    workspace.board.create([NewTask(i, "run", "a", 1, "do it", {}) for i in ids])
    workspace.close()
    with multiprocessing.get_context("spawn").Manager() as manager, _pool() as pool:
        ready = manager.Barrier(PROCESSES)
        done = pool.starmap(_claim, [(postgres_url, w, ready) for w in range(PROCESSES)])
    finished = [t for d in done for t in d]
    assert sorted(finished) == sorted(ids)  # every task once, none twice
    assert sum(1 for d in done if d) > 1  # the work was shared
