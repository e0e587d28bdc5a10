"""``langgraph-sdk`` (sync and async clients) and ``RemoteGraph`` against a real uvicorn
serving two teams, unchanged: assistants, threads, runs (stream, wait, join, cancel)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client, get_sync_client

from corral import load_team
from corral.server import create_app
from tests.conftest import ROOT
from tests.server.conftest import Served, running


def work(served: Served, pause: float = 0.0, name: str = "log") -> dict[str, Any]:
    """A ``chain`` input: each of its four steps sleeps ``pause`` s and logs to a file."""
    return {"log": str(served.folder / f"{name}.txt"), "pause": pause, "count": 0}


def test_assistants_are_the_teams(served: Served) -> None:
    client = get_sync_client(url=served.url)
    found = client.assistants.search()
    assert sorted(a["graph_id"] for a in found) == ["chain", "reviewed", "slow_review"]
    assert client.assistants.count() == 3
    assert client.assistants.search(graph_id="chain")[0]["name"] == "chain"
    reviewed = next(a for a in found if a["graph_id"] == "reviewed")
    assert client.assistants.get(reviewed["assistant_id"]) == reviewed
    assert client.assistants.get("reviewed") == reviewed  # a graph id works as an id
    schemas = client.assistants.get_schemas(reviewed["assistant_id"])
    assert set(schemas["input_schema"]["properties"]) == {"text"}
    assert set(schemas["output_schema"]["properties"]) == {"text", "score"}
    graph = client.assistants.get_graph("chain")
    assert {"a", "b", "c", "d"} <= {n["id"] for n in graph["nodes"]}
    assert {"source": "a", "target": "b"}.items() <= graph["edges"][1].items() or any(
        e["source"] == "a" and e["target"] == "b" for e in graph["edges"]
    )
    with pytest.raises(httpx.HTTPStatusError) as missing:
        client.assistants.get("nobody")
    assert missing.value.response.status_code == 404


def test_a_streamed_run_starts_with_metadata_and_ends_with_end(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create(metadata={"who": "sync"})
    assert thread["status"] == "idle"
    parts = list(
        client.runs.stream(
            thread["thread_id"],
            "chain",
            input=work(served, name="stream"),
            stream_mode=["values", "updates", "custom"],
        )
    )
    assert parts[0].event == "metadata"
    assert parts[0].data["attempt"] == 1
    assert parts[-1].event == "end"
    updates = [next(iter(p.data)) for p in parts if p.event == "updates"]
    assert updates == ["a", "b", "c", "d"]
    steps = [p.data["agent"] for p in parts if p.event == "custom" and p.data["kind"] == "step"]
    assert steps == ["a", "b", "c", "d"]
    values = [p.data for p in parts if p.event == "values"]
    assert values[-1]["count"] == 4
    assert set(values[-1]) == {"log", "pause", "count"}  # the flow's output, as LangGraph's
    run = client.runs.get(thread["thread_id"], parts[0].data["run_id"])
    assert run["status"] == "success"
    assert client.runs.list(thread["thread_id"])[0]["run_id"] == run["run_id"]
    got = client.threads.get(thread["thread_id"])
    assert (got["status"], got["metadata"]["who"], got["values"]["count"]) == ("idle", "sync", 4)
    state = client.threads.get_state(thread["thread_id"])
    assert state["values"]["count"] == 4
    assert state["next"] == []
    history = client.threads.get_history(thread["thread_id"], limit=3)
    assert len(history) == 3
    assert history[0]["checkpoint"] == state["checkpoint"]
    assert history[1]["checkpoint"]["checkpoint_id"] == state["parent_checkpoint"]["checkpoint_id"]
    earlier = client.threads.get_state(thread["thread_id"], checkpoint=history[2]["checkpoint"])
    assert earlier["values"]["count"] == history[2]["values"]["count"] < 4


def test_wait_join_and_stateless_runs(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    assert client.runs.wait(thread, "chain", input=work(served))["count"] == 4
    background = client.runs.create(None, "chain", input=work(served, 0.05))
    assert background["status"] in ("pending", "running")
    assert client.runs.join(background["thread_id"], background["run_id"])["count"] == 4
    assert client.runs.get(background["thread_id"], background["run_id"])["status"] == "success"
    assert client.runs.wait(None, "chain", input=work(served))["count"] == 4


def test_headers_say_where_the_run_is(served: Served) -> None:
    thread = get_sync_client(url=served.url).threads.create()["thread_id"]
    body = {"assistant_id": "chain", "input": work(served)}
    with httpx.Client(base_url=served.url) as http:
        created = http.post(f"/threads/{thread}/runs", json=body)
        run = created.json()["run_id"]
        assert created.headers["content-location"] == f"/threads/{thread}/runs/{run}"
        http.get(f"/threads/{thread}/runs/{run}/join")
        copy = http.post("/threads", json={}).json()["thread_id"]
        waited = http.post(f"/threads/{copy}/runs/wait", json=body)
        where = waited.headers["content-location"]
        assert waited.headers["location"] == f"{where}/join"
        again = http.post(f"/threads/{copy}/runs/wait", json=body)
        assert again.status_code == 409  # one corral run per thread
        fresh = http.post("/threads", json={}).json()["thread_id"]
        with http.stream("POST", f"/threads/{fresh}/runs/stream", json=body) as streamed:
            assert streamed.headers["content-type"].startswith("text/event-stream")
            assert streamed.headers["location"].endswith("/stream")
            assert streamed.read()


def test_bad_input_is_a_422_with_field_errors(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as bad:
        client.runs.wait(thread, "chain", input={"log": "x", "pause": -1, "count": 0})
    assert bad.value.response.status_code == 422
    assert bad.value.response.json()["detail"][0]["loc"] == ["body", "input", "pause"]
    assert client.threads.get(thread)["status"] == "idle"  # nothing ran


def _wait_until(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_cancel_a_run_then_go_on_from_its_checkpoint(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "cancel.txt"
    run = client.runs.create(thread, "chain", input=work(served, 0.3, "cancel"))
    _wait_until(lambda: log.exists() and "done a" in log.read_text())
    assert client.threads.get(thread)["status"] == "busy"
    client.runs.cancel(thread, run["run_id"], wait=True)
    assert client.runs.get(thread, run["run_id"])["status"] == "interrupted"
    assert client.threads.get(thread)["status"] == "idle"
    cancelled = _record(served, thread)  # held by no process: another may resume it
    assert (cancelled.status, cancelled.errors[0]["type"]) == ("cancelled", "RunError")
    done = client.runs.wait(thread, "chain", input=None)  # on from the last checkpoint
    assert done["count"] == 4
    assert log.read_text().count("done a") == 1  # the finished step did not run again
    assert _record(served, thread).status == "completed"


def _record(served: Served, thread: str) -> Any:
    with load_team(served.folder / "chain" / "team.yaml").compile(db=served.folder / "w.db") as app:
        return app.runs.get(thread)


def test_multitask_reject_and_enqueue(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "queue.txt"
    first = client.runs.create(thread, "chain", input=work(served, 0.2, "queue"))
    queued = client.runs.create(thread, "chain", input=None, multitask_strategy="enqueue")
    assert client.runs.get(thread, queued["run_id"])["status"] == "pending"
    with pytest.raises(httpx.HTTPStatusError) as busy:
        client.runs.create(thread, "chain", input=None, multitask_strategy="reject")
    assert busy.value.response.status_code == 409
    assert client.runs.join(thread, queued["run_id"])["count"] == 4
    assert client.runs.get(thread, first["run_id"])["status"] == "success"
    assert client.runs.get(thread, queued["run_id"])["status"] == "success"
    assert log.read_text().count("done d") == 1  # the queued run went on from the end


def test_a_run_on_an_ended_thread_leaves_its_record_ended(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    first = client.runs.wait(thread, "chain", input=work(served, 0, "ended"))
    assert first["count"] == 4
    again = client.runs.wait(thread, "chain", input=None)  # nothing left to run
    assert again["count"] == 4
    assert _record(served, thread).status == "completed"


def test_two_runs_asked_at_once_on_one_thread_start_one(served: Served) -> None:
    # Starting a run awaits the workspace before the thread counts as busy; a second
    # request in that window must still be refused, not run the graph a second time.
    async def both() -> list[Any]:
        client = get_client(url=served.url)
        thread = (await client.threads.create())["thread_id"]

        async def one() -> Any:
            try:
                return await client.runs.create(thread, "chain", input=work(served, 0.1, "two"))
            except httpx.HTTPStatusError as exc:
                return exc.response.status_code

        made = await asyncio.gather(one(), one())
        for run in made:
            if isinstance(run, dict):
                await client.runs.join(thread, run["run_id"])
        return made

    made = asyncio.run(both())
    assert sorted(str(type(r).__name__) for r in made) == ["dict", "int"]
    assert 409 in made
    assert (served.folder / "two.txt").read_text().count("done a") == 1


def test_a_waiting_caller_that_leaves_cancels_its_run_when_asked(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "left.txt"
    body = {"assistant_id": "chain", "input": work(served, 0.4, "left"), "on_disconnect": "cancel"}
    with (
        httpx.Client(base_url=served.url, timeout=0.5) as short,
        pytest.raises(httpx.TimeoutException),
    ):
        short.post(f"/threads/{thread}/runs/wait", json=body)  # gone after 0.5 s
    _wait_until(lambda: client.runs.list(thread)[0]["status"] == "interrupted")
    assert client.threads.get(thread)["status"] == "idle"
    assert "done d" not in log.read_text()


def test_multitask_interrupt(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "interrupting.txt"
    first = client.runs.create(thread, "chain", input=work(served, 0.3, "interrupting"))
    _wait_until(lambda: log.exists() and "done a" in log.read_text())
    second = client.runs.create(thread, "chain", input=None, multitask_strategy="interrupt")
    _wait_until(lambda: client.runs.get(thread, second["run_id"])["status"] == "running")
    assert client.runs.get(thread, first["run_id"])["status"] == "interrupted"
    assert _record(served, thread).status == "running"  # the second's, not "cancelled"
    assert client.runs.join(thread, second["run_id"])["count"] == 4
    assert client.runs.get(thread, second["run_id"])["status"] == "success"
    assert log.read_text().count("done a") == 1  # the second went on from the checkpoint
    assert _record(served, thread).status == "completed"


def test_cancel_with_rollback(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "rollback.txt"
    run = client.runs.create(thread, "chain", input=work(served, 0.3, "rollback"))
    _wait_until(lambda: log.exists() and "done a" in log.read_text())
    client.runs.cancel(thread, run["run_id"], wait=True, action="rollback")
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client.runs.get(thread, run["run_id"])
    assert gone.value.response.status_code == 404
    assert client.threads.get(thread)["status"] == "idle"
    team = load_team(served.folder / "chain" / "team.yaml")
    with team.compile(db=served.folder / "w.db") as app:  # the workspace forgot the run
        assert app.runs.get(thread) is None
        assert app.graph.get_state(app.config(thread)).created_at is None  # no checkpoint
    again = client.runs.wait(thread, "chain", input=work(served, 0.0, "rollback"))
    assert again["count"] == 4  # the thread is new: a new input starts it from the entry
    assert log.read_text().count("done a") == 2
    resumed = client.runs.create(thread, "chain", input=None)  # not the thread's first run
    client.runs.join(thread, resumed["run_id"])
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.cancel(thread, resumed["run_id"], action="rollback")
    assert refused.value.response.status_code == 409


def test_a_run_that_ended_is_not_rolled_back(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    run = client.runs.create(thread, "chain", input=work(served, 0.0, "ended"))
    assert client.runs.join(thread, run["run_id"])["count"] == 4
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.cancel(thread, run["run_id"], action="rollback")
    assert refused.value.response.status_code == 409
    assert "has ended" in refused.value.response.text
    assert client.threads.get_state(thread)["values"]["count"] == 4  # its work stays
    assert client.runs.get(thread, run["run_id"])["status"] == "success"


def test_multitask_rollback(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "mt_rollback.txt"
    first = client.runs.create(thread, "chain", input=work(served, 0.3, "mt_rollback"))
    _wait_until(lambda: log.exists() and "done a" in log.read_text())
    with pytest.raises(httpx.HTTPStatusError) as bad:  # checked before anything is undone
        client.runs.create(thread, "chain", input={"count": "x"}, multitask_strategy="rollback")
    assert bad.value.response.status_code == 422
    fresh = dict(work(served, 0.0, "mt_rollback"), count=10)
    second = client.runs.create(thread, "chain", input=fresh, multitask_strategy="rollback")
    assert client.runs.join(thread, second["run_id"])["count"] == 14  # from the new input
    with pytest.raises(httpx.HTTPStatusError) as gone:  # the first run was rolled back
        client.runs.get(thread, first["run_id"])
    assert gone.value.response.status_code == 404
    assert client.runs.get(thread, second["run_id"])["status"] == "success"
    assert [r["run_id"] for r in client.runs.list(thread)] == [second["run_id"]]
    assert log.read_text().count("done a") == 2  # the new run started from the entry
    history = client.threads.get_history(thread, limit=100)
    assert all(h["values"].get("count", 10) >= 10 for h in history)  # no old checkpoint
    resumed = client.runs.create(thread, "chain", input=None)  # not the thread's first run
    client.runs.join(thread, resumed["run_id"])
    blocker = client.threads.create()["thread_id"]
    client.runs.create(blocker, "chain", input=work(served, 0.5, "mt_rollback2"))
    slow = served.folder / "mt_rollback2.txt"
    _wait_until(lambda: slow.exists() and "done a" in slow.read_text())
    again = client.runs.create(blocker, "chain", input=None, multitask_strategy="interrupt")
    with pytest.raises(httpx.HTTPStatusError) as refused:  # a resuming run stays
        client.runs.create(
            blocker, "chain", input=work(served, 0.0, "x"), multitask_strategy="rollback"
        )
    assert refused.value.response.status_code == 409
    assert "started its thread" in refused.value.response.text
    client.runs.join(blocker, again["run_id"])


def test_search_count_copy_delete_threads(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create(metadata={"tag": "sc"})["thread_id"]
    client.runs.wait(thread, "chain", input=work(served))
    assert [t["thread_id"] for t in client.threads.search(metadata={"tag": "sc"})] == [thread]
    assert client.threads.count(metadata={"tag": "sc"}) == 1
    assert client.threads.count() >= client.threads.count(status="idle") >= 1
    copy = client.threads.copy(thread)
    assert copy["thread_id"] != thread
    assert (
        client.threads.get_state(copy["thread_id"])["values"]
        == (client.threads.get_state(thread)["values"])
    )
    client.threads.delete(thread)
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client.threads.get(thread)
    assert gone.value.response.status_code == 404
    with load_team(served.folder / "chain" / "team.yaml").compile(db=served.folder / "w.db") as app:
        assert app.runs.get(thread) is None
        assert app.graph.get_state(app.config(thread)).created_at is None  # no checkpoint


def test_the_async_client(served: Served) -> None:
    async def go() -> tuple[list[str], Any, Any]:
        client = get_client(url=served.url)
        thread = await client.threads.create()
        events = [
            part.event
            async for part in client.runs.stream(
                thread["thread_id"], "chain", input=work(served), stream_mode="updates"
            )
        ]
        other = await client.threads.create()
        waited = await client.runs.wait(other["thread_id"], "reviewed", input={"text": "hi"})
        state = await client.threads.get_state(other["thread_id"])
        return events, waited, state

    events, waited, state = asyncio.run(go())
    assert events == ["metadata", "updates", "updates", "updates", "updates", "end"]
    assert waited["__interrupt__"][0]["value"]["reason"].startswith("the edge solver -> END")
    assert (
        state["interrupts"][0]["value"]["payload"] == waited["__interrupt__"][0]["value"]["payload"]
    )


def test_remote_graph(served: Served, tmp_path: Path) -> None:
    remote = RemoteGraph("chain", url=served.url)
    config = {"configurable": {"thread_id": "remote-1"}}
    assert remote.invoke(work(served), config)["count"] == 4  # the thread is created
    assert remote.get_state(config).values["count"] == 4
    assert len(list(remote.get_state_history(config))) >= 5
    chunks = list(
        remote.stream(work(served), {"configurable": {"thread_id": "r2"}}, stream_mode="updates")
    )
    assert [next(iter(c)) for c in chunks] == ["a", "b", "c", "d"]
    drawn = remote.get_graph()
    assert {"a", "d"} <= set(drawn.nodes)

    async def go() -> Any:
        return await remote.ainvoke(work(served), {"configurable": {"thread_id": "r3"}})

    assert asyncio.run(go())["count"] == 4


def test_the_other_stream_modes(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    modes = ["debug", "tasks", "checkpoints", "messages-tuple"]
    parts = list(client.runs.stream(thread, "reviewed", input={"text": "hi"}, stream_mode=modes))
    seen = {p.event for p in parts}
    assert {"metadata", "debug", "tasks", "checkpoints", "end"} <= seen
    tasks = [p.data for p in parts if p.event == "tasks" and "input" in p.data]
    assert [t["name"] for t in tasks][:1] == ["solver"]
    with pytest.raises(httpx.HTTPStatusError) as unknown:
        client.runs.create(thread, "reviewed", input={"text": "x"}, stream_mode="nonsense")
    assert unknown.value.response.status_code == 422


def _kinds(parts: list[Any]) -> list[tuple[str, str]]:
    return [(p.data["event"], p.data["name"]) for p in parts if p.event == "events"]


def test_events_stream_mode(served: Served) -> None:
    """``events``: LangChain's ``astream_events`` v2 events, as LangGraph's server sends
    them (SSE event ``events``, the event dict as data), streamed and joined."""
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    parts = list(
        client.runs.stream(thread, "reviewed", input={"text": "hi"}, stream_mode=["events"])
    )
    assert (parts[0].event, parts[-1].event) == ("metadata", "end")
    assert {p.event for p in parts} == {"metadata", "events", "end"}
    kinds = _kinds(parts)
    assert ("on_chain_start", "solver") in kinds  # a node
    assert ("on_chain_end", "solver") in kinds
    models = [p.data for p in parts if p.event == "events" and "chat_model" in p.data["event"]]
    assert [m["event"] for m in models][:1] == ["on_chat_model_start"]
    assert "on_chat_model_end" in [m["event"] for m in models]
    assert models[0]["metadata"]["langgraph_node"] == "solver"
    assert models[0]["data"]["input"]["messages"]  # the prompt the model was given
    first = next(p.data for p in parts if p.event == "events")
    assert first["event"] == "on_chain_start"  # the run itself, under its run id
    assert first["run_id"] == parts[0].data["run_id"]
    assert set(first) >= {"event", "name", "run_id", "data", "metadata", "tags"}
    other = client.threads.create()["thread_id"]
    run = client.runs.create(
        other, "chain", input=work(served, 0.0, "events"), stream_mode=["events", "updates"]
    )
    joined = list(client.runs.join_stream(other, run["run_id"]))
    assert [next(iter(p.data)) for p in joined if p.event == "updates"] == ["a", "b", "c", "d"]
    steps = [n for e, n in _kinds(joined) if e == "on_chain_start"]
    assert [n for n in steps if n in ("a", "b", "c", "d")] == ["a", "b", "c", "d"]
    only = list(client.runs.join_stream(other, run["run_id"], stream_mode="events"))
    assert _kinds(only) == _kinds(joined)
    assert {p.event for p in only} == {"metadata", "events", "end"}


def test_a_run_stopped_by_its_step_limit_is_recorded_halted(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "tests" / "fixtures" / "chain", tmp_path / "chain")
    team = tmp_path / "chain" / "team.yaml"
    team.write_text(team.read_text() + "guards: {max_steps: 2}\n")
    with running(create_app([team], db=tmp_path / "w.db"), tmp_path) as served:
        client = get_sync_client(url=served.url)
        thread = client.threads.create()["thread_id"]
        client.runs.wait(thread, "chain", input=work(served, 0, "limited"), raise_error=False)
    with load_team(team).compile(db=tmp_path / "w.db") as app:
        record = app.runs.get(thread)
    assert record is not None
    assert (record.status, record.errors[0]["type"]) == ("halted", "StepLimitExceeded")


def test_thread_search_sorts_as_asked(served: Served) -> None:
    client = get_sync_client(url=served.url)
    made = []
    for name in ("t-b", "t-c", "t-a"):
        made.append(client.threads.create(thread_id=name, metadata={"tag": "sorted"}))
        time.sleep(0.01)  # distinct creation times
    ids = [t["thread_id"] for t in made]

    def found(**order: Any) -> list[str]:
        return [t["thread_id"] for t in client.threads.search(metadata={"tag": "sorted"}, **order)]

    assert found() == ids[::-1]  # newest first
    assert found(sort_by="created_at", sort_order="asc") == ids
    assert found(sort_by="thread_id", sort_order="asc") == ["t-a", "t-b", "t-c"]
    assert found(sort_by="thread_id", sort_order="desc", limit=1) == ["t-c"]


def test_a_thread_with_a_run_running_stays_busy_whatever_is_queued_behind_it(
    served: Served,
) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    log = served.folder / "queued.txt"
    first = client.runs.create(thread, "chain", input=work(served, 0.4, "queued"))
    queued = client.runs.create(thread, "chain", input=None, multitask_strategy="enqueue")
    _wait_until(lambda: log.exists() and "done a" in log.read_text())
    client.runs.cancel(thread, queued["run_id"], wait=True)  # only the queued one
    assert client.runs.get(thread, first["run_id"])["status"] == "running"
    assert client.threads.get(thread)["status"] == "busy"
    with pytest.raises(httpx.HTTPStatusError) as refused:  # reject: not beside it
        client.runs.create(thread, "chain", input=None)
    assert refused.value.response.status_code == 409
    with pytest.raises(httpx.HTTPStatusError) as kept:
        client.threads.delete(thread)
    assert kept.value.response.status_code == 409
    again = client.runs.create(thread, "chain", input=None, multitask_strategy="enqueue")
    late = client.runs.create(thread, "chain", input=None, multitask_strategy="interrupt")
    assert client.runs.join(thread, late["run_id"])["count"] == 4
    statuses = {r["run_id"]: r["status"] for r in client.runs.list(thread)}
    assert statuses[first["run_id"]] == "interrupted"  # the running one was stopped too
    assert statuses[again["run_id"]] == "interrupted"
    _wait_until(lambda: log.read_text().count("start") == log.read_text().count("done"))
    assert log.read_text().count("done d") == 1  # one run went on to the end, not two
