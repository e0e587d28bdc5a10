"""SSE reconnect: a client that drops a run's stream and comes back with
``Last-Event-ID`` (at the ``Location`` the stream gave) gets every later event once."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.server.conftest import Served


def _events(lines: Any, stop_after: int | None = None) -> list[tuple[str, str, Any]]:
    """(id, event, data) of each SSE event read from ``lines``."""
    found: list[tuple[str, str, Any]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "event" in current:
                found.append((current.get("id", ""), current["event"], json.loads(current["data"])))
                if stop_after is not None and len(found) == stop_after:
                    return found
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")
    return found


def test_reconnect_with_last_event_id_has_no_duplicates(served: Served) -> None:
    thread = get_sync_client(url=served.url).threads.create()["thread_id"]
    body = {
        "assistant_id": "chain",
        "input": {"log": str(served.folder / "sse.txt"), "pause": 0.15, "count": 0},
        "stream_mode": ["updates", "custom"],
    }
    with httpx.Client(base_url=served.url, timeout=30) as http:
        with http.stream("POST", f"/threads/{thread}/runs/stream", json=body) as first:
            location = first.headers["location"]
            before = _events(first.iter_lines(), stop_after=3)  # then the client drops
        assert before[0][1] == "metadata"
        last_id = before[-1][0]
        with http.stream("GET", location, headers={"Last-Event-ID": last_id}) as again:
            after = _events(again.iter_lines())
        with http.stream("GET", location) as whole:  # from the start, for comparison
            everything = _events(whole.iter_lines())
    assert before + after == everything  # nothing lost, nothing twice
    ids = [int(i) for i, _, _ in everything]
    assert ids == sorted(set(ids))
    assert after[-1][1] == "end"
    updates = [next(iter(d)) for _, e, d in everything if e == "updates"]
    assert updates == ["a", "b", "c", "d"]


def test_the_sdk_joins_a_stream_from_an_event_id(served: Served) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    work = {"log": str(served.folder / "join.txt"), "pause": 0.05, "count": 0}
    run = client.runs.create(thread, "chain", input=work, stream_mode=["updates", "values"])
    whole = list(client.runs.join_stream(thread, run["run_id"]))
    only = list(client.runs.join_stream(thread, run["run_id"], stream_mode="updates"))
    assert [p.event for p in only] == ["metadata"] + ["updates"] * 4 + ["end"]
    tail = list(client.runs.join_stream(thread, run["run_id"], last_event_id=whole[4].id))
    assert [(p.event, p.id) for p in tail] == [(p.event, p.id) for p in whole[5:]]


def test_a_negative_event_id_is_refused_and_history_pages_before_a_checkpoint(
    served: Served,
) -> None:
    client = get_sync_client(url=served.url)
    thread = client.threads.create()["thread_id"]
    work = {"log": str(served.folder / "neg.txt"), "pause": 0.0, "count": 0}
    run = client.runs.create(thread, "chain", input=work, stream_mode="updates")
    client.runs.join(thread, run["run_id"])
    with pytest.raises(httpx.HTTPStatusError) as bad:  # not a list index from the end
        list(client.runs.join_stream(thread, run["run_id"], last_event_id="-3"))
    assert bad.value.response.status_code == 422
    history = client.threads.get_history(thread, limit=100)
    mark = history[2]["checkpoint"]  # a checkpoint as the server gave it
    by_id = client.threads.get_history(thread, before=mark["checkpoint_id"], limit=100)
    by_checkpoint = client.threads.get_history(thread, before=mark, limit=100)
    assert [h["checkpoint"] for h in by_checkpoint] == [h["checkpoint"] for h in by_id]
    assert [h["checkpoint"] for h in by_id] == [h["checkpoint"] for h in history[3:]]
    with pytest.raises(httpx.HTTPStatusError) as unnamed:
        client.threads.get_history(thread, before={"checkpoint_ns": ""})
    assert unnamed.value.response.status_code == 422
    assert client.threads.get(thread)["status"] == "idle"  # the connection still serves
