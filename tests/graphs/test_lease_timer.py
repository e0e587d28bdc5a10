"""One lease timer thread per App: it renews every held run when due, serves run after
run without a thread of its own for each, drops a run taken over, and ends with the App."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from corral.graphs._lease import Renewals
from tests.conftest import one_step_team


class Q(BaseModel):
    text: str


class Held:
    """A run in progress as the timer sees it: always due, renewals counted."""

    def __init__(self, run_id: str, answer: object = True) -> None:
        self.run_id = run_id
        self.renew_every = 0.1  # the timer looks every 0.05 s
        self.renewed = 0
        self.answer = answer
        self.renew = self._renew

        self.by: set[int] = set()

    def _renew(self) -> object:
        self.renewed += 1
        self.by.add(threading.get_ident())
        return self.answer

    def due(self) -> bool:
        return True


def timers(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_held_runs_are_renewed_on_every_beat_and_no_more_once_let_go() -> None:
    renewals = Renewals("test-timer-beats")
    first, second = Held("a"), Held("b")
    with renewals.holding(first), renewals.holding(second):
        time.sleep(0.5)  # beats every 0.05 s
    assert first.renewed >= 4
    assert second.renewed >= 4
    assert len(first.by | second.by) == 1  # both served by one thread
    after = first.renewed
    time.sleep(0.3)
    assert first.renewed == after
    renewals.stop()
    deadline = time.monotonic() + 5
    while timers("test-timer-beats") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert timers("test-timer-beats") == []


def test_a_run_taken_over_is_not_renewed_again() -> None:
    renewals = Renewals("test-timer-lost")
    lost = Held("lost", answer=False)  # ``renew`` says another owner holds it now
    with renewals.holding(lost):
        time.sleep(0.4)
    renewals.stop()
    assert lost.renewed == 1


def test_one_timer_thread_serves_run_after_run_and_ends_with_the_app(tmp_path: Path) -> None:
    seen: list[int | None] = []

    def step(q: Q) -> dict[str, Any]:
        seen.extend(t.ident for t in timers("corral-leases:leases"))
        return q.model_dump()

    team = one_step_team("leases", Q, step)
    app = team.compile(db=tmp_path / "w.db")
    for i in range(5):
        assert app.run({"text": "x"}, run_id=f"r{i}").ok
    assert len(seen) == 5
    assert len(set(seen)) == 1  # the same thread in every run
    app.close()
    deadline = time.monotonic() + 5
    while timers("corral-leases:leases") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert timers("corral-leases:leases") == []
