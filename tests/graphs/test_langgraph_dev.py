"""The example's ``langgraph.json`` works with LangGraph's own dev server (``langgraph dev``,
in-memory, blocking-call detection on), and ``langgraph-sdk`` clients run the team
through it unchanged, reviews included (resumed with ``Command(resume=...)``)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client, get_sync_client

from tests.conftest import ROOT, TICKET

REVIEWED = """\
version: 1
name: reviewed
schemas:
  Question: {fields: {text: str}}
  Answer: {fields: {text: str, score: {type: int, ge: 0, le: 10}}}
agents:
  - {id: solver, role: Solver}
flow:
  entry: solver
  input: Question
  output: Answer
  edges: [{from: solver, to: END, schema: Answer, review: true}]
"""
REVIEWED_GRAPH = """\
from pathlib import Path

from corral import load_team

HERE = Path(__file__).resolve().parent
graph = load_team(HERE / "reviewed.yaml").compile(db=HERE / ".corral" / "r.db").server_graph()
"""
OFFLINE = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``langgraph dev`` serving a copy of the example folder (plus a reviewed team)."""
    folder = tmp_path_factory.mktemp("lgdev") / "support_desk"
    shutil.copytree(ROOT / "examples" / "support_desk", folder)
    config = json.loads((folder / "langgraph.json").read_text())
    assert config["graphs"] == {"support_desk": "./graph.py:graph"}  # the example's own
    config["graphs"]["reviewed"] = "./reviewed.py:graph"
    (folder / "langgraph.json").write_text(json.dumps(config))
    (folder / "reviewed.yaml").write_text(REVIEWED)
    (folder / "reviewed.py").write_text(REVIEWED_GRAPH)
    port = _free_port()
    cli = Path(sys.executable).with_name("langgraph")
    log = (folder / "server.log").open("w")
    # No --allow-blocking: the server's blockbuster fails a run that blocks its loop.
    command = [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=folder,
        env={**os.environ, **OFFLINE},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((folder / "server.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
        assert "BlockingError" not in (folder / "server.log").read_text()


def test_the_sdk_streams_and_waits_for_a_run_of_the_example(server: str) -> None:
    client = get_sync_client(url=server)
    ticket = json.loads(TICKET.read_text())
    assistant = next(a for a in client.assistants.search() if a["graph_id"] == "support_desk")
    schemas = client.assistants.get_schemas(assistant["assistant_id"])
    assert set(schemas["input_schema"]["properties"]) == set(ticket)
    assert set(schemas["output_schema"]["properties"]) == {"ticket_id", "subject", "body", "tone"}
    thread = client.threads.create()
    parts = list(
        client.runs.stream(
            thread["thread_id"], "support_desk", input=ticket, stream_mode=["custom", "updates"]
        )
    )
    steps = [p.data["agent"] for p in parts if p.event == "custom" and p.data["kind"] == "step"]
    assert steps == ["intake", "triage", "billing", "refund_policy", "qa", "writer"]
    assert parts[0].event == "metadata"
    output = client.runs.wait(client.threads.create()["thread_id"], "support_desk", input=ticket)
    assert isinstance(output, dict)
    assert (
        output["ticket_id"] == client.threads.get_state(thread["thread_id"])["values"]["ticket_id"]
    )


def _paused(client: Any, text: str) -> tuple[str, dict[str, Any]]:
    thread = client.threads.create()["thread_id"]
    client.runs.wait(thread, "reviewed", input={"text": text})
    state = client.threads.get_state(thread)
    assert state["next"] == ["__review__"]
    return thread, state["interrupts"][0]["value"]


def test_a_review_is_an_interrupt_resumed_with_a_command(server: str) -> None:
    client = get_sync_client(url=server)
    thread, review = _paused(client, "approve me")
    assert (review["kind"], review["source"], review["schema"]) == ("edge", "solver", "Answer")
    approved = client.runs.wait(thread, "reviewed", command={"resume": {"action": "approve"}})
    assert approved == review["payload"]

    thread, review = _paused(client, "edit me")
    edited = {"text": "edited by a person", "score": 7}
    done = client.runs.wait(
        thread, "reviewed", command={"resume": {"action": "edit", "payload": edited}}
    )
    assert done == edited

    thread, _ = _paused(client, "reject me")
    client.runs.wait(thread, "reviewed", command={"resume": {"action": "reject", "reason": "no"}})
    values = client.threads.get_state(thread)["values"]
    assert values["_rejected"] == "rejected by reviewer: no"


def test_the_async_client_works_too(server: str) -> None:
    async def run() -> Any:
        client = get_client(url=server)
        thread = await client.threads.create()
        return await client.runs.wait(thread["thread_id"], "reviewed", input={"text": "hi"})

    answer = asyncio.run(run())
    assert "__interrupt__" in answer  # the run paused at its review point
