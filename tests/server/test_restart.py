"""Background runs survive the server: kill -9 it mid-run, start it again on the same
workspace, and the run completes, each step once. ``corral serve`` in a subprocess."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph_sdk import get_client, get_sync_client

from corral import load_team
from tests.server.conftest import free_port, teams


def serve(
    folder: Path, port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``corral serve`` on the test teams, once ``/ok`` answers."""
    corral = Path(sys.executable).with_name("corral")
    command = [str(corral), "serve", *map(str, teams(folder)), "--db", str(folder / "w.db")]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=1):
                return process
        except OSError:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)


def test_a_background_run_completes_once_after_kill_9(tmp_path: Path) -> None:
    folder = tmp_path / "first"
    folder.mkdir()
    port = free_port()
    steps = tmp_path / "steps.txt"
    server = serve(folder, port, tmp_path / "server.log")
    try:
        client = get_sync_client(url=f"http://127.0.0.1:{port}")
        thread = client.threads.create()["thread_id"]
        work = {"log": str(steps), "pause": 0.4, "count": 0}
        run = client.runs.create(thread, "chain", input=work)
        deadline = time.monotonic() + 30
        # "start c": b's checkpoint is written (durability sync), so a kill cannot land
        # between b's last line and its checkpoint (b would rightly run again)
        while not (steps.exists() and "start c" in steps.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    assert "done d" not in steps.read_text()  # it was killed mid-run

    # the same workspace; the team files are rewritten in place (same content)
    again = _serve_again(folder, port, tmp_path)
    try:
        client = get_sync_client(url=f"http://127.0.0.1:{port}")
        assert client.runs.join(thread, run["run_id"])["count"] == 4
        assert client.runs.get(thread, run["run_id"])["status"] == "success"
        assert client.threads.get(thread)["status"] == "idle"
    finally:
        os.killpg(again.pid, signal.SIGTERM)
        again.wait(timeout=30)
    lines = steps.read_text().splitlines()
    for step in "abcd":
        assert lines.count(f"done {step}") == 1, lines
    with load_team(folder / "chain" / "team.yaml").compile(db=folder / "w.db") as app:
        record = app.runs.get(thread)
        assert record is not None
        assert (record.status, record.output) == ("completed", {**work, "count": 4})


def _serve_again(folder: Path, port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    for item in ("chain", "reviewed.yaml"):  # ``teams`` copies them afresh
        target = folder / item
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    return serve(folder, port, tmp_path / "server.log")


def _until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


async def _leave(url: str, thread: str, work: dict[str, Any]) -> None:
    """Stream a run with ``on_disconnect="cancel"`` and leave after its first step."""
    async for part in get_client(url=url).runs.stream(
        thread, "chain", input=work, on_disconnect="cancel", stream_mode="updates"
    ):
        if part.event == "updates":
            break


def test_after_kill_9_only_runs_no_one_cancelled_go_on(tmp_path: Path) -> None:
    # On one thread a queued run is cancelled while the first runs: the first still goes
    # on after a restart. On another, the streaming caller leaves (on_disconnect cancel):
    # that run was cancelled for good and does not.
    folder = tmp_path / "first"
    folder.mkdir()
    port = free_port()
    kept, left = tmp_path / "kept.txt", tmp_path / "left.txt"
    server = serve(folder, port, tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        client = get_sync_client(url=url)
        thread, other = (client.threads.create()["thread_id"] for _ in range(2))
        run = client.runs.create(
            thread, "chain", input={"log": str(kept), "pause": 0.4, "count": 0}
        )
        queued = client.runs.create(thread, "chain", input=None, multitask_strategy="enqueue")
        client.runs.cancel(thread, queued["run_id"])
        asyncio.run(_leave(url, other, {"log": str(left), "pause": 0.4, "count": 0}))
        _until(lambda: client.runs.list(other)[0]["status"] == "interrupted")
        _until(lambda: kept.exists() and "start c" in kept.read_text())
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    again = _serve_again(folder, port, tmp_path)
    try:
        client = get_sync_client(url=url)
        assert client.runs.join(thread, run["run_id"])["count"] == 4
        assert client.threads.get(other)["status"] == "idle"
    finally:
        os.killpg(again.pid, signal.SIGTERM)
        again.wait(timeout=30)
    assert kept.read_text().splitlines().count("done d") == 1
    assert "start c" not in left.read_text()
