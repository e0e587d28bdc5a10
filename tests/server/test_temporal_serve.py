"""``corral serve --temporal``: runs created through the API go to ``corral worker``
subprocesses through a real Temporal dev server, on a throwaway Postgres workspace, and
``langgraph-sdk`` uses the server unchanged (wait, background and join, stream, review,
cancel)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from temporalio.client import WorkflowExecutionStatus

from corral import InputError, load_team
from corral.scale import Dispatcher
from corral.server import create_app
from corral.server._wire import plain
from tests.scale.conftest import Scale, _scale, postgres, temporal  # noqa: F401 (fixtures)
from tests.server.conftest import free_port, running, teams
from tests.workspace.postgres_cluster import Cluster


@dataclass
class Served:
    url: str
    folder: Path
    db: str
    temporal: str
    workers: list[int]
    """The worker processes' ids (chain's, then slow_review's)."""


@pytest.fixture(scope="module")
def served(
    temporal: str,  # noqa: F811
    postgres: Cluster,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """Two teams served on Temporal: one ``corral worker`` for each (its default queue),
    one Postgres workspace for the workers and the server. The review team's model takes
    0.3 s a call, so the server reads the run's checkpoints while the run goes on."""
    folder = tmp_path_factory.mktemp("serve_temporal")
    _, reviewed, chain = teams(folder)  # slow_review: its model answers in 0.3 s
    with postgres.database() as url:
        scale = Scale(temporal, "corral-chain", url, [], folder)
        stop = _scale(scale)
        next(stop)
        try:
            scale.start(chain)
            scale.queue = "corral-slow_review"
            scale.start(reviewed)
            app = create_app([reviewed, chain], db=url, temporal=temporal)
            with running(app, folder) as found:
                pids = [w.pid for w in scale.workers]
                yield Served(found.url, folder, url, temporal, pids)
        finally:
            next(stop, None)


def work(served: Served, pause: float = 0.0, name: str = "log") -> dict[str, Any]:
    """A ``chain`` input: each of its four steps sleeps ``pause`` s and logs to a file."""
    return {"log": str(served.folder / f"{name}.txt"), "pause": pause, "count": 0}


def workflow(served: Served, run_id: str) -> tuple[Any, Any]:
    """The run's workflow: its ``state`` query and its Temporal status."""

    async def go() -> tuple[Any, Any]:
        runs = await Dispatcher.connect(served.temporal)
        return await runs.state(run_id), await runs.status(run_id)

    return asyncio.run(go())


def record(served: Served, team: str, run_id: str) -> Any:
    """The run's record in the shared workspace."""
    file = served.folder / ("chain/team.yaml" if team == "chain" else "slow.yaml")
    with load_team(file).compile(db=served.db) as app:
        return app.runs.get(run_id)


def test_wait_background_join_and_state_run_on_the_worker(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    assert client.runs.wait(thread, "chain", input=work(served, name="wait")) == {
        **work(served, name="wait"),
        "count": 4,
    }
    state, status = workflow(served, thread)  # the run was a workflow, run by chain's worker
    assert status == WorkflowExecutionStatus.COMPLETED
    assert [w.split("@")[0] for w in state.workers] == [str(served.workers[0])]
    assert record(served, "chain", thread).status == "completed"
    got = client.threads.get(thread)
    assert (got["status"], got["values"]["count"]) == ("idle", 4)
    history = client.threads.get_history(thread, limit=100)
    assert [h["next"] for h in history] == [[], ["d"], ["c"], ["b"], ["a"], ["__start__"]]
    background = client.runs.create(None, "chain", input=work(served, 0.05, "background"))
    assert background["status"] == "pending"
    joined = client.runs.join(background["thread_id"], background["run_id"])
    assert joined["count"] == 4
    run = client.runs.get(background["thread_id"], background["run_id"])
    assert run["status"] == "success"
    again = list(client.runs.join_stream(background["thread_id"], background["run_id"]))
    assert [p.event for p in again] == ["metadata", "values", "values", "end"]
    assert again[-2].data == joined
    assert client.runs.wait(None, "chain", input=work(served, name="stateless"))["count"] == 4
    log = (served.folder / "background.txt").read_text().split()
    assert log.count("done") == 4  # each step once


def test_a_stream_is_what_the_run_streams_in_process(served: Served, tmp_path: Path) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    given = work(served, name="stream")
    parts = list(
        client.runs.stream(thread, "chain", input=given, stream_mode=["values", "updates"])
    )
    assert (parts[0].event, parts[-1].event) == ("metadata", "end")
    assert parts[0].data["attempt"] == 1
    seen = [(p.event, p.data) for p in parts[1:-1]]
    with load_team(served.folder / "chain" / "team.yaml").compile(db=tmp_path / "w.db") as app:
        embedded = [
            (mode, plain(chunk))
            for mode, chunk in app.graph.stream(
                given,
                app.config("here"),
                stream_mode=["values", "updates"],
                output_keys=app.graph.output_channels,
            )
        ]
    assert [e for e, _ in seen] == [m for m, _ in embedded]
    assert seen == embedded  # the same events, in the same order, with the same data
    assert [next(iter(d)) for e, d in seen if e == "updates"] == ["a", "b", "c", "d"]
    assert [d["count"] for e, d in seen if e == "values"] == [0, 4]  # input, output
    updates = list(client.runs.stream(None, "chain", input=given, stream_mode="updates"))
    assert [p.event for p in updates] == ["metadata", *["updates"] * 4, "end"]


def test_stream_modes_the_workspace_does_not_hold_are_refused(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    for mode in ("custom", "messages-tuple", "events", "debug"):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            client.runs.create(thread, "chain", input=work(served), stream_mode=[mode])
        assert refused.value.response.status_code == 422
        assert "on Temporal workers" in refused.value.response.json()["detail"]
    assert client.threads.get(thread)["status"] == "idle"  # nothing was submitted


def test_a_review_pauses_the_run_and_command_resume_approves_it(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    paused = client.runs.wait(thread, "slow_review", input={"text": "approve me"})
    (waiting,) = paused["__interrupt__"]
    review = waiting["value"]
    assert review["reason"] == "the edge solver -> END is a review point"
    got = client.threads.get(thread)
    assert got["status"] == "interrupted"
    assert next(iter(got["interrupts"].values()))[0]["value"]["payload"] == review["payload"]
    state, status = workflow(served, thread)
    assert (state.state, status) == ("paused", WorkflowExecutionStatus.RUNNING)
    with pytest.raises(httpx.HTTPStatusError) as bad:  # checked here, before any signal
        client.runs.wait(
            thread, "slow_review", command={"resume": {"action": "edit", "payload": {"score": 99}}}
        )
    assert bad.value.response.status_code == 422
    assert client.threads.get(thread)["status"] == "interrupted"  # still paused
    assert workflow(served, thread)[0].state == "paused"
    done = client.runs.wait(thread, "slow_review", command={"resume": {"action": "approve"}})
    assert done == review["payload"]
    assert client.threads.get(thread)["status"] == "idle"
    assert record(served, "slow_review", thread).status == "completed"
    state, status = workflow(served, thread)
    assert status == WorkflowExecutionStatus.COMPLETED
    assert state.activities == 2  # the run, then its resumption by the decide signal
    assert {w.split("@")[0] for w in state.workers} == {str(served.workers[1])}
    other = client.threads.create()["thread_id"]
    client.runs.wait(other, "slow_review", input={"text": "reject me"})
    reason = {"action": "reject", "reason": "wrong tone"}
    rejected = client.runs.create(other, "slow_review", command={"resume": reason})
    client.runs.join(other, rejected["run_id"])
    assert client.runs.get(other, rejected["run_id"])["status"] == "success"  # as in-process
    assert client.threads.get(other)["status"] == "error"  # the run failed: rejected
    assert client.threads.get_state(other)["values"]["_rejected"].endswith("wrong tone")
    assert record(served, "slow_review", other).status == "failed"
    given = {"text": "stream me"}
    parts = list(client.runs.stream(None, "slow_review", input=given, stream_mode="updates"))
    assert [p.event for p in parts] == ["metadata", "updates", "updates", "end"]
    assert next(iter(parts[1].data)) == "solver"
    assert parts[2].data["__interrupt__"][0]["value"]["payload"]["text"] == "stream me"
    dropped = client.threads.create()["thread_id"]
    client.runs.wait(dropped, "slow_review", input={"text": "delete me"})
    assert workflow(served, dropped)[0].state == "paused"
    client.threads.delete(dropped)  # its workflow waits for no review any more
    assert workflow(served, dropped)[1] == WorkflowExecutionStatus.CANCELED
    assert record(served, "slow_review", dropped) is None


def _wait_until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_cancel_cancels_the_workflow_and_a_new_run_goes_on_from_the_checkpoint(
    served: Served,
) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "cancel.txt"
    run = client.runs.create(thread, "chain", input=work(served, 2.5, "cancel"))
    _wait_until(lambda: log.exists() and "done a" in log.read_text())
    assert client.threads.get(thread)["status"] == "busy"
    client.runs.cancel(thread, run["run_id"], wait=True)
    assert client.runs.get(thread, run["run_id"])["status"] == "interrupted"
    assert record(served, "chain", thread).status == "cancelled"
    assert workflow(served, thread)[1] == WorkflowExecutionStatus.CANCELED
    assert client.threads.get(thread)["status"] == "idle"
    done = client.runs.wait(thread, "chain", input=None)  # a new workflow, from the checkpoint
    assert done["count"] == 4
    assert log.read_text().count("done a") == 1  # the finished step did not run again
    assert record(served, "chain", thread).status == "completed"
    quick = client.threads.create()["thread_id"]  # cancelled as soon as it is created
    run = client.runs.create(quick, "chain", input=work(served, 2.5, "quick"))
    client.runs.cancel(quick, run["run_id"], wait=True)
    assert client.runs.get(quick, run["run_id"])["status"] == "interrupted"
    try:  # none if cancelled before it was submitted; else cancelled, once started
        status = workflow(served, quick)[1]
    except InputError:
        status = None
    assert status in (None, WorkflowExecutionStatus.CANCELED)
    assert getattr(record(served, "chain", quick), "status", None) in (None, "cancelled")
    fast = client.threads.create()["thread_id"]  # may end before the cancel reaches it
    run = client.runs.create(fast, "chain", input=work(served, 0.0, "fast"))
    client.runs.cancel(fast, run["run_id"], wait=True)
    said = client.runs.get(fast, run["run_id"])["status"]
    held = getattr(record(served, "chain", fast), "status", None)
    assert (said, held) in {
        ("success", "completed"),  # the run's status says what happened, either way
        ("interrupted", "cancelled"),
        ("interrupted", None),
    }


def test_multitask_reject_and_interrupt(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "interrupting.txt"
    first = client.runs.create(thread, "chain", input=work(served, 2.5, "interrupting"))
    _wait_until(lambda: log.exists() and "done a" in log.read_text())
    with pytest.raises(httpx.HTTPStatusError) as busy:
        client.runs.create(thread, "chain", input=None, multitask_strategy="reject")
    assert busy.value.response.status_code == 409
    second = client.runs.create(thread, "chain", input=None, multitask_strategy="interrupt")
    assert client.runs.join(thread, second["run_id"])["count"] == 4
    assert client.runs.get(thread, first["run_id"])["status"] == "interrupted"
    assert client.runs.get(thread, second["run_id"])["status"] == "success"
    assert log.read_text().count("done a") == 1  # the second went on from the checkpoint


def test_multitask_enqueue_and_rollback(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "queue.txt"
    first = client.runs.create(thread, "chain", input=work(served, 0.5, "queue"))
    queued = client.runs.create(thread, "chain", input=None, multitask_strategy="enqueue")
    assert client.runs.get(thread, queued["run_id"])["status"] == "pending"
    assert client.runs.join(thread, queued["run_id"])["count"] == 4
    assert client.runs.get(thread, first["run_id"])["status"] == "success"
    assert log.read_text().count("done d") == 1  # the queued run went on from the end
    other = client.threads.create()["thread_id"]
    log = served.folder / "rollback.txt"
    client.runs.create(other, "chain", input=work(served, 2.5, "rollback"))
    _wait_until(lambda: log.exists() and "done a" in log.read_text())
    fresh = dict(work(served, 0.0, "rollback"), count=10)
    second = client.runs.create(other, "chain", input=fresh, multitask_strategy="rollback")
    assert client.runs.join(other, second["run_id"])["count"] == 14  # from the new input
    assert [r["run_id"] for r in client.runs.list(other)] == [second["run_id"]]
    assert log.read_text().count("done a") == 2  # the new run started from the entry
    history = client.threads.get_history(other, limit=100)
    assert all(h["values"].get("count", 10) >= 10 for h in history)  # no old checkpoint


def test_a_stopped_server_leaves_its_runs_to_the_workers(served: Served) -> None:
    folder = served.folder / "second"
    folder.mkdir()
    chain = teams(folder)[2]
    log = served.folder / "outlive.txt"
    with running(create_app([chain], db=served.db, temporal=served.temporal), folder) as one:
        client = get_sync_client(url=one.url)
        run = client.runs.create(None, "chain", input=work(served, 0.5, "outlive"))
        thread = run["thread_id"]
        _wait_until(lambda: log.exists() and "done a" in log.read_text())
    assert "done d" not in log.read_text()  # the server stopped mid-run
    _wait_until(lambda: record(served, "chain", thread).status == "completed")
    assert log.read_text().count("done") == 4  # on the worker, each step once
    with running(create_app([chain], db=served.db, temporal=served.temporal), folder) as two:
        client = get_sync_client(url=two.url)
        got = client.threads.get(thread)
        assert (got["status"], got["values"]["count"]) == ("idle", 4)
        assert client.threads.get_state(thread)["values"]["count"] == 4
        with pytest.raises(httpx.HTTPStatusError) as unknown:
            client.runs.join(thread, run["run_id"])
        assert unknown.value.response.status_code == 404


def test_a_named_queue_is_one_team_s(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--queue names one team's task queue"):
        create_app(teams(tmp_path)[:2], temporal="127.0.0.1:1", queue="q")


def _serve(served: Served, port: int, log: Path, *options: str) -> subprocess.Popen[bytes]:
    corral = Path(sys.executable).with_name("corral")
    return subprocess.Popen(
        [
            *(str(corral), "serve", str(served.folder / "chain" / "team.yaml")),
            *("--db", served.db, "--port", str(port), "--temporal", *options),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_corral_serve_temporal_from_the_command_line(served: Served, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    server = _serve(served, port, log, served.temporal, "--queue", "corral-chain")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=1):
                    break
            except OSError:
                assert server.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
        client = get_sync_client(url=f"http://127.0.0.1:{port}")
        assert client.runs.wait(None, "chain", input=work(served, name="cli"))["count"] == 4
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == -signal.SIGTERM, log.read_text()  # uvicorn's way to end
    assert "Traceback" not in log.read_text()
    assert (served.folder / "cli.txt").read_text().count("done") == 4
    nowhere = _serve(served, free_port(), tmp_path / "nowhere.log", f"127.0.0.1:{free_port()}")
    code = nowhere.wait(timeout=60)
    said = (tmp_path / "nowhere.log").read_text()
    assert code == 2, said
    assert "cannot reach a Temporal server" in said
    assert "Traceback" not in said
