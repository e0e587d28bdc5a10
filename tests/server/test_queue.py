"""A thread's queue of runs: a rollback takes the runs queued behind the rolled back run
with it, and runs that ended leave the queue."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from corral import load_team
from corral.server._jobs import Job, unfinished
from tests.server.conftest import Served
from tests.server.test_sdk import _wait_until, work


def _forgotten(served: Served, thread: str) -> bool:
    """Whether the workspace holds no run and no checkpoint for ``thread``."""
    team = load_team(served.folder / "chain" / "team.yaml")
    with team.compile(db=served.folder / "w.db") as app:
        return app.runs.get(thread) is None and (
            app.graph.get_state(app.config(thread)).created_at is None
        )


def _queued(served: Served, name: str) -> tuple[Any, str, dict[str, Any], dict[str, Any]]:
    """A thread with its first run running (its first step done) and one queued behind:
    the client, the thread, the first run and the queued one."""
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / f"{name}.txt"
    first = client.runs.create(thread, "chain", input=work(served, 0.3, name))
    queued = client.runs.create(thread, "chain", input=None, multitask_strategy="enqueue")
    _wait_until(lambda: log.exists() and "done a" in log.read_text())
    return client, thread, first, queued


def test_a_rollback_cancel_stops_the_runs_queued_behind_it(served: Served) -> None:
    client, thread, first, queued = _queued(served, "rb_queue")
    client.runs.cancel(thread, first["run_id"], wait=True, action="rollback")
    assert client.runs.get(thread, queued["run_id"])["status"] == "interrupted"
    time.sleep(0.5)  # a queued run let go would start now, from the deleted checkpoints
    assert client.runs.get(thread, queued["run_id"])["status"] == "interrupted"
    assert client.threads.get(thread)["status"] == "idle"
    assert _forgotten(served, thread)
    again = client.runs.wait(thread, "chain", input=work(served, 0.0, "rb_queue"))
    assert again["count"] == 4  # the thread is new: the input starts it from the entry


def test_multitask_rollback_with_a_run_queued_rolls_back_the_running_run(
    served: Served,
) -> None:
    client, thread, first, queued = _queued(served, "mt_queue")
    fresh = dict(work(served, 0.0, "mt_queue"), count=10)
    second = client.runs.create(thread, "chain", input=fresh, multitask_strategy="rollback")
    assert client.runs.join(thread, second["run_id"])["count"] == 14  # from the new input
    with pytest.raises(httpx.HTTPStatusError) as gone:  # the first run was rolled back
        client.runs.get(thread, first["run_id"])
    assert gone.value.response.status_code == 404
    assert client.runs.get(thread, queued["run_id"])["status"] == "interrupted"
    history = client.threads.get_history(thread, limit=100)
    assert all(h["values"].get("count", 10) >= 10 for h in history)  # no old checkpoint


def _job(name: str, ahead: Job | None) -> Job:
    return Job(name, "t", "a", {}, "enqueue", ["values"], ahead=ahead)


def test_runs_that_ended_leave_the_queue() -> None:
    oldest = _job("1", None)
    ended = _job("2", oldest)
    ended_too = _job("3", ended)
    queued = _job("4", ended_too)
    newest = _job("5", queued)
    ended.done.set()
    ended_too.done.set()
    assert unfinished(newest) == [newest, queued, oldest]
    assert queued.ahead is oldest  # the ended runs are out of the chain
    oldest.done.set()
    assert unfinished(newest) == [newest, queued]
    assert queued.ahead is None
    newest.done.set()
    queued.done.set()
    assert unfinished(newest) == []
    assert newest.ahead is None  # an idle thread's last run holds no earlier run
    assert unfinished(None) == []
