"""Async runs never block the event loop: every storage call runs off it.

The runs here go through blockbuster (the detector LangGraph's dev server uses), which
raises ``BlockingError`` for any blocking call made on the loop: sqlite3, file I/O,
``time.sleep`` and the like.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from blockbuster import blockbuster_ctx

from corral import RunEvent, load_team
from tests.conftest import SUPPORT_DESK, TICKET
from tests.graphs.test_stream import DELEGATE, ORG, STORM, mixed
from tests.guards.test_budgets import team as budgeted


def _unblocked(app: Any, call: Callable[[], Any]) -> Any:
    async def go() -> Any:
        with blockbuster_ctx():
            return await call()

    return asyncio.run(go())


def test_arun_and_astream_make_no_blocking_call_on_the_loop(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    ticket = json.loads(TICKET.read_text())
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "desk.db") as app:
        result = _unblocked(app, lambda: app.arun(ticket))
        assert result.status == "completed", result.errors

        async def stream() -> list[RunEvent]:
            return [e async for e in app.astream(ticket)]

        events = _unblocked(app, stream)
        assert events[-1].status == "completed"  # type: ignore[union-attr]
    # retries, tools, budgets and alerts
    with mixed(write, STORM).compile(db=tmp_path / "mixed.db") as app:
        result = _unblocked(app, lambda: app.arun({"invoice_id": "INV-1"}))
        assert result.status == "completed", result.errors
    # delegation rounds, the task board
    write("script.yaml", DELEGATE)
    with load_team(write("org.yaml", ORG)).compile(db=tmp_path / "org.db") as app:
        result = _unblocked(app, lambda: app.arun({"question": "why?"}))
        assert (result.status, result.tasks_created) == ("completed", 2)


def test_a_review_pauses_and_resumes_without_blocking(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    team = mixed(write, "replies: []\n", review=", review: true")
    with team.compile(db=tmp_path / "w.db") as app:
        paused = _unblocked(app, lambda: app.arun({"invoice_id": "INV-2"}))
        assert paused.status == "paused"
        done = _unblocked(app, lambda: app.aresume(paused.run_id, approve=True))
        assert done.status == "completed", done.errors


def test_a_run_cancelled_mid_call_gives_its_reservation_back_off_the_loop(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    script = "agents:\n  solver:\n    - {auto: true, delay: 30}\n"
    db = tmp_path / "w.db"

    def statuses() -> list[str]:
        with sqlite3.connect(db) as conn:
            return [r[0] for r in conn.execute("SELECT status FROM usage ORDER BY id")]

    with budgeted(write, "{daily_tokens: 100000}", script).compile(db=db) as app:

        async def cancel_mid_call() -> None:
            running = asyncio.create_task(app.arun({"text": "q"}))
            while await asyncio.to_thread(statuses) != ["reserved"]:
                await asyncio.sleep(0.02)
            running.cancel()  # what the server's and Temporal's cancel do to a run
            with pytest.raises(asyncio.CancelledError):
                await running
            # given back as the cancel ends (on a worker thread), not when the run's
            # frames are collected, maybe on the loop
            assert await asyncio.to_thread(statuses) == ["released"]

        _unblocked(app, cancel_mid_call)
        [record] = app.list_runs()
        assert record.status == "cancelled"


def _hold_write_lock(db: str, seconds: float, ready: Any) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    ready.set()
    time.sleep(seconds)
    conn.execute("COMMIT")


@pytest.mark.serial  # a latency figure: measured with the machine to itself
def test_the_loop_stays_responsive_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.db"
    ticket = json.loads(TICKET.read_text())
    with load_team(SUPPORT_DESK).compile(db=db) as app:

        async def scenario() -> tuple[list[float], list[str]]:
            lags: list[float] = []
            stop = asyncio.Event()

            async def heartbeat() -> None:  # what a /health route would feel
                while not stop.is_set():
                    start = time.perf_counter()
                    await asyncio.sleep(0.005)
                    lags.append(time.perf_counter() - start - 0.005)

            ready = multiprocessing.Event()
            holder = multiprocessing.Process(target=_hold_write_lock, args=(str(db), 1.5, ready))
            holder.start()
            ready.wait(10)
            beat = asyncio.create_task(heartbeat())
            results = await asyncio.gather(*(app.arun(ticket) for _ in range(20)))
            stop.set()
            await beat
            holder.join()
            return lags, [r.status for r in results]

        lags, statuses = asyncio.run(scenario())
    assert statuses == ["completed"] * 20
    lags.sort()
    p99 = lags[int(len(lags) * 0.99) - 1]
    assert len(lags) > 100  # the heartbeat ran all through the lock
    assert p99 < 0.05, f"p99 loop lag {p99 * 1000:.1f} ms"
