"""The task board: compare-and-set claims, leases, objective priority, workspace limits."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from corral import GuardTripped, Limits, NewTask, Workspace, open_workspace
from tests.workspace.conftest import Clock


def task(i: int | str, **kw: object) -> NewTask:
    return NewTask(
        id=f"t{i}",
        run_id="r",
        assignee="worker",
        depth=1,
        instruction="do it",
        payload={"i": i},
        **kw,
    )  # type: ignore[arg-type]


def test_claim_is_compare_and_set_and_done_tasks_never_rerun(
    workspace: Workspace, clock: Clock
) -> None:
    b = workspace.board
    b.create([task(1)])
    first = b.claim("t1", "alice", lease_seconds=30)
    assert first is not None
    assert first.status == "claimed"
    assert first.claimer == "alice"
    assert b.claim("t1", "bob", lease_seconds=30) is None  # held by alice
    assert not b.complete("t1", "bob", {"x": 1})  # only the holder may finish it
    assert b.complete("t1", "alice", {"answer": 42})
    again = b.claim("t1", "bob", lease_seconds=30)
    assert again is not None
    assert again.status == "done"  # not claimed again: its recorded result is used
    assert again.result == {"answer": 42}
    assert again.attempts == 1


def test_expired_lease_is_reclaimed_and_the_old_holder_cannot_finish(
    workspace: Workspace, clock: Clock
) -> None:
    b = workspace.board
    b.create([task(1)])
    assert b.claim_next("alice", lease_seconds=10) is not None
    assert b.claim_next("bob", lease_seconds=10) is None
    clock.now += 11
    taken = b.claim_next("bob", lease_seconds=10)
    assert taken is not None
    assert taken.claimer == "bob"
    assert taken.attempts == 2
    assert not b.complete("t1", "alice", {"late": True})
    assert b.complete("t1", "bob", {"ok": True})


def test_priority_is_objective_and_the_model_modifier_is_bounded(
    workspace: Workspace, clock: Clock
) -> None:
    b = workspace.board
    b.create(
        [task("loud", modifier=1e9), task("blocking", blocked=2), task("important", impact=120)]
    )
    clock.now += 60
    b.create([task("new")])
    order = [b.claim_next("w", 60).id for _ in range(4)]  # type: ignore[union-attr]
    assert order == ["tblocking", "timportant", "tloud", "tnew"]
    assert b.priority("tloud") == pytest.approx(50 + 60 / 6.0)  # modifier clamped to 50
    b.create([task("huge", blocked=50)])
    assert b.priority("thuge") == 1000.0  # the score is capped


def test_rate_limit_cooldown_and_pending_cap_create_nothing_when_tripped(
    workspace: Workspace, clock: Clock
) -> None:
    b = workspace.board
    limits = Limits(rate_count=5, rate_seconds=3600, cooldown_seconds=600, max_pending=100)
    b.create([task(i) for i in range(4)], limits)
    with pytest.raises(GuardTripped) as rate:
        b.create([task(i) for i in range(4, 6)], limits)
    assert (rate.value.guard, rate.value.limit, rate.value.seen) == ("task_rate", 5, 6)
    assert b.count() == 4
    assert b.cooldown_until() == clock.now + 600
    with pytest.raises(GuardTripped, match="cooling down for 600"):
        b.create([task(9)], limits)
    clock.now += 601
    b.create([task(9)], limits)  # cooldown over, and 5 in the window is allowed
    assert b.count() == 5
    with pytest.raises(GuardTripped) as pending:
        b.create([task(i) for i in range(10, 13)], Limits(max_pending=7))
    assert (pending.value.guard, pending.value.seen) == ("max_pending_tasks", 8)
    assert b.count() == 5
    b.create([task(1)], limits)  # an id that exists is kept, not counted again
    assert b.count() == 5


WORKER = textwrap.dedent("""
    import sqlite3, sys, time
    from pathlib import Path
    from corral import open_workspace
    db, name, slow = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    board = open_workspace(db).board
    log = sqlite3.connect(db, timeout=60)
    while (task := board.claim_next(name, lease_seconds=1.0)) is not None:
        time.sleep(slow)
        if board.complete(task.id, name, {"by": name}):
            with log:
                log.execute("INSERT INTO completions VALUES (?, ?)", (task.id, name))
    print("drained")
""")


def test_four_competing_workers_complete_each_of_10000_tasks_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    b = open_workspace(db).board
    b.create([task(i) for i in range(10_000)])
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE completions (task_id TEXT PRIMARY KEY, worker TEXT)")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), f"w{k}", "0.3" if k == 0 else "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    deadline = time.monotonic() + 60
    with sqlite3.connect(db, timeout=60) as watch:
        while not watch.execute(
            "SELECT count(*) FROM tasks WHERE claimer = 'w0' AND status = 'claimed'"
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "w0 never held a task"
            time.sleep(0.01)
    os.kill(workers[0].pid, signal.SIGKILL)  # dies holding a claimed task
    for w in workers[1:]:
        out, err = w.communicate(timeout=240)
        assert w.returncode == 0, err
        assert "drained" in out
        assert "database is locked" not in err
    workers[0].wait()
    assert b.count(status="done") == 10_000
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM completions").fetchone()[0] == 10_000
        reclaimed = conn.execute("SELECT count(*) FROM tasks WHERE attempts > 1").fetchone()[0]
        by_worker = dict(
            conn.execute("SELECT worker, count(*) FROM completions GROUP BY worker").fetchall()
        )
    assert reclaimed >= 1  # the killed worker's task was taken back after its lease
    assert set(by_worker) >= {"w1", "w2", "w3"}
