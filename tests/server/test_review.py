"""A paused run is an interrupted thread whose interrupt carries the payload and the
reason; ``command: {resume: ...}`` approves, rejects with a reason, or edits (checked
against the schema: a bad edit is a 422 and the run stays paused). Through the SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client

from corral import load_team
from corral.scale import Steps
from tests.server.conftest import Served


def _paused(client: Any, text: str) -> tuple[str, dict[str, Any]]:
    thread = client.threads.create()["thread_id"]
    client.runs.wait(thread, "reviewed", input={"text": text})
    got = client.threads.get(thread)
    assert got["status"] == "interrupted"
    (waiting,) = got["interrupts"].values()
    review = waiting[0]["value"]
    assert (review["kind"], review["source"], review["schema"]) == ("edge", "solver", "Answer")
    assert review["reason"] == "the edge solver -> END is a review point"
    assert set(review["payload"]) == {"text", "score"}
    return thread, review


def _record(served: Served, thread: str) -> Any:
    with load_team(served.folder / "reviewed.yaml").compile(db=served.folder / "w.db") as app:
        return app.runs.get(thread)


def test_approve(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread, review = _paused(client, "approve me")
    done = client.runs.wait(thread, "reviewed", command={"resume": {"action": "approve"}})
    assert done == review["payload"]
    assert client.threads.get(thread)["status"] == "idle"
    assert _record(served, thread).status == "completed"


def test_reject_with_a_reason(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread, _ = _paused(client, "reject me")
    client.runs.wait(
        thread, "reviewed", command={"resume": {"action": "reject", "reason": "wrong tone"}}
    )
    state = client.threads.get_state(thread)
    assert state["values"]["_rejected"] == "rejected by reviewer: wrong tone"
    assert client.threads.get(thread)["status"] == "error"
    record = _record(served, thread)
    assert record.status == "failed"
    assert "wrong tone" in record.errors[0]["message"]


def test_an_edit_is_checked_against_the_schema(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread, review = _paused(client, "edit me")
    with pytest.raises(httpx.HTTPStatusError) as bad:
        client.runs.wait(
            thread,
            "reviewed",
            command={"resume": {"action": "edit", "payload": {"text": "x", "score": 99}}},
        )
    assert bad.value.response.status_code == 422
    answer = bad.value.response.json()
    assert answer["field"] == "score"
    assert "less than or equal to 10" in answer["detail"]
    still = client.threads.get(thread)
    assert still["status"] == "interrupted"  # the run stays paused
    assert next(iter(still["interrupts"].values()))[0]["value"] == review
    edited = {"text": "edited by a person", "score": 7}
    done = client.runs.wait(
        thread, "reviewed", command={"resume": {"action": "edit", "payload": edited}}
    )
    assert done == edited
    assert _record(served, thread).output == edited


def test_a_resume_that_is_not_a_decision_is_refused(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread, _ = _paused(client, "say what")
    for resume in ({"action": "maybe"}, "yes"):
        with pytest.raises(httpx.HTTPStatusError) as bad:
            client.runs.wait(thread, "reviewed", command={"resume": resume})
        assert bad.value.response.status_code == 422
    assert client.threads.get(thread)["status"] == "interrupted"
    finished = client.threads.create()["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as nothing:  # a thread that waits for nobody
        client.runs.wait(finished, "reviewed", command={"resume": {"action": "approve"}})
    assert nothing.value.response.status_code in (409, 422)


def test_the_async_client_decides_too(served: Served) -> None:
    async def go() -> tuple[Any, Any]:
        client = get_client(url=served.url)
        thread = (await client.threads.create())["thread_id"]
        paused = await client.runs.wait(thread, "reviewed", input={"text": "async"})
        parts = [
            (p.event, p.data)
            async for p in client.runs.stream(
                thread,
                "reviewed",
                command={"resume": {"action": "approve"}},
                stream_mode="values",
            )
        ]
        return paused, parts

    paused, parts = asyncio.run(go())
    payload = paused["__interrupt__"][0]["value"]["payload"]
    assert parts[0][0] == "metadata"
    assert parts[-1][0] == "end"
    assert [d for e, d in parts if e == "values"][-1] == payload


def test_a_queued_decision_is_checked_when_it_starts(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    first = client.runs.create(thread, "slow_review", input={"text": "queued"})  # 0.3 s
    bad = {"resume": {"action": "edit", "payload": {"text": "x", "score": 99}}}
    queued = client.runs.create(thread, "slow_review", command=bad, multitask_strategy="enqueue")
    assert queued["status"] == "pending"
    error = client.runs.join(thread, queued["run_id"])["__error__"]
    assert error["error"] == "InputError"
    assert "the edit is not a valid Answer" in error["message"]
    assert client.runs.get(thread, first["run_id"])["status"] == "success"
    assert client.runs.get(thread, queued["run_id"])["status"] == "error"
    assert client.threads.get(thread)["status"] == "interrupted"  # still waiting
    done = client.runs.wait(thread, "slow_review", command={"resume": {"action": "approve"}})
    assert done["text"] == "queued"


def test_a_run_a_worker_left_waiting_in_its_workflow_is_not_resumed_here(
    served: Served,
) -> None:
    with load_team(served.folder / "reviewed.yaml").compile(db=served.folder / "w.db") as app:
        paused = app.run({"text": "on a worker"})
        assert paused.status == "paused"
        Steps(app, identity="worker-1").outcome(paused)  # as a worker leaves it: waiting
    client = get_sync_client(url=served.url)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.wait(paused.run_id, "reviewed", command={"resume": {"action": "approve"}})
    assert refused.value.response.status_code == 409
    assert "its Temporal workflow" in refused.value.response.text
    assert _record(served, paused.run_id).status == "paused"  # its workflow decides
