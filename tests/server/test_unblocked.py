"""The server never blocks its event loop: uvicorn and the SDK's async client share one
loop under blockbuster (the detector LangGraph's dev server uses), so a blocking call
made by corral's code on the loop (sqlite3, file I/O, sleep) fails a request or a run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import uvicorn
from langgraph_sdk import get_client

from corral.server import create_app
from tests.conftest import run_unblocked
from tests.server.conftest import REVIEWED, free_port


async def _exercise(url: str) -> dict[str, Any]:
    client = get_client(url=url)
    await client.assistants.search()
    await client.assistants.get_graph("reviewed")
    thread = (await client.threads.create())["thread_id"]
    streamed = [
        p.event
        async for p in client.runs.stream(
            thread, "reviewed", input={"text": "hi"}, stream_mode=["values", "updates", "custom"]
        )
    ]
    assert "error" not in streamed, streamed
    assert (await client.threads.get(thread))["status"] == "interrupted"
    done = await client.runs.wait(thread, "reviewed", command={"resume": {"action": "approve"}})
    await client.threads.get_state(thread)
    await client.threads.get_history(thread)
    await client.threads.search()
    await client.threads.copy(thread)
    await client.store.put_item(["corral", "reviewed", "global"], "k", {"v": 1})
    await client.store.get_item(["corral", "reviewed", "global"], "k")
    await client.store.search_items(["corral"])
    background = await client.runs.create(None, "reviewed", input={"text": "bg"})
    joined = await client.runs.join(background["thread_id"], background["run_id"])
    return {"done": done, "joined": joined}


def test_nothing_blocks_the_loop(tmp_path: Path) -> None:
    (tmp_path / "reviewed.yaml").write_text(REVIEWED)
    port = free_port()
    app = create_app([tmp_path / "reviewed.yaml"], db=tmp_path / "w.db")  # setup: not async

    async def main() -> dict[str, Any]:
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:
            assert not serving.done(), "the server stopped"
            await asyncio.sleep(0.02)
        try:
            return await _exercise(f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await serving

    found = run_unblocked(main())
    assert set(found["done"]) == {"text", "score"}
    assert "__interrupt__" in found["joined"]
