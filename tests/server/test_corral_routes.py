"""Corral's own routes beside the LangGraph API: the review inbox with its payloads, a
run's trace, the budget report, metrics, and the OpenAPI document."""

from __future__ import annotations

import datetime as dt

import httpx
from langgraph_sdk import get_sync_client

from tests.server.conftest import Served


def test_the_review_inbox_trace_and_budget(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    paused = client.runs.wait(thread, "reviewed", input={"text": "inbox"})
    with httpx.Client(base_url=served.url) as http:
        inbox = http.get("/corral/reviews").json()
        mine = [r for r in inbox if r["thread_id"] == thread]
        assert len(mine) == 1
        assert mine[0]["team"] == "reviewed"
        assert mine[0]["payload"] == paused["__interrupt__"][0]["value"]["payload"]
        assert mine[0]["reason"] == "the edge solver -> END is a review point"
        client.runs.wait(thread, "reviewed", command={"resume": {"action": "approve"}})
        assert thread not in [r["thread_id"] for r in http.get("/corral/reviews").json()]
        trace = http.get(f"/corral/threads/{thread}/trace").json()
        kinds = [e["kind"] for e in trace]
        assert kinds == ["server_run", "input", "step", "llm_call", "step", "server_run"]
        today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        report = http.get("/corral/budget", params={"day": today}).json()
        solver = next(line for line in report if line["agent"] == "solver")
        assert solver["calls"] >= 1
        assert report[-1]["agent"] == "team"
        assert http.get("/corral/budget", params={"day": "soon"}).status_code == 422
        assert http.get("/corral/threads/none-such/trace").status_code == 404


def test_the_openapi_document_is_served(served: Served) -> None:
    with httpx.Client(base_url=served.url) as http:
        document = http.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/assistants/search",
        "/threads/{thread_id}/runs/stream",
        "/threads/{thread_id}/runs/{run_id}/join",
        "/runs/wait",
        "/corral/reviews",
        "/metrics",
        "/ok",
    ):
        assert path in paths, path
