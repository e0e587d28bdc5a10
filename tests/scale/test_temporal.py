"""Runs on Temporal workers: a real dev server, `corral worker` subprocesses sharing one
SQLite workspace, runs submitted through the CLI and the Python API."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral import InputError, RunError, load_team
from corral.scale import Dispatcher
from corral.scale._client import PREFIX
from corral.scale._subtasks import FANOUT_PREFIX as FANOUT
from tests.conftest import ROOT, run_cli
from tests.scale.conftest import Scale, wait_for

TEAM = """\
version: 1
name: books{suffix}
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Entry: {{fields: {{entry: str, hold: float}}}}
  Posted: {{fields: {{status: str, entry: str, hold: float}}}}
tools:
  post: {{import: "tools:post"}}
agents:
  - {{id: clerk, role: Bookkeeper, tools: [post], output: Posted}}
  - {{id: slow, kind: function, function: "tools:slow", input: Posted, output: Posted}}
flow:
  entry: clerk
  input: Entry
  output: Posted
  edges:
    - {{from: clerk, to: slow, schema: Posted}}
    - {{from: slow, to: END, schema: Posted{review}}}
"""
SCRIPT = """\
agents:
  clerk:
    - tool: {name: post, args: {entry: refund INV-7}}
    - output: {status: posted, entry: refund INV-7, hold: 0}
then: auto
"""
TOOLS = '''\
import os
import time
from pathlib import Path

from langchain_core.tools import tool

HERE = Path(__file__).parent


def _log(name: str, line: str) -> None:
    with (HERE / name).open("a") as f:
        f.write(line + "\\n")
        f.flush()
        os.fsync(f.fileno())


@tool
def post(entry: str) -> str:
    """Post an entry to the books (not idempotent)."""
    _log("effects.log", f"post {entry} {os.getpid()}")
    return f"posted {entry}"


def slow(p):
    first = not (HERE / "slow.log").exists()
    _log("slow.log", f"slow {os.getpid()}")
    if first:
        time.sleep(p.hold)  # a window to kill or cancel the run in
    return p
'''


@pytest.fixture
def team(write: Callable[..., Path]) -> Callable[..., Path]:
    """The team file (``review``: the output edge's review setting), with its tools."""

    def make(*, review: str = "") -> Path:
        write("script.yaml", SCRIPT)
        write("tools.py", TOOLS)
        suffix, flag = ("_reviewed", f", review: {review}") if review else ("", "")
        return write("team.yaml", TEAM.format(suffix=suffix, review=flag))

    return make


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def record(db: Path, run_id: str) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        status, errors = conn.execute(
            "SELECT status, errors FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        kinds = [k for (k,) in conn.execute("SELECT kind FROM events WHERE run_id = ?", (run_id,))]
    return {"status": status, "errors": json.loads(errors or "[]"), "events": kinds}


@pytest.mark.parametrize("stop", ["kill -9", "SIGTERM"])
def test_a_killed_or_stopped_worker_s_run_finishes_on_another_without_repeating_work(
    scale: Scale, team: Callable[..., Path], tmp_path: Path, stop: str
) -> None:
    file = team()
    first, second = scale.start(file, 2)

    async def go() -> Any:
        runs = await Dispatcher.connect(scale.target, heartbeat_seconds=2)
        run_id = await runs.submit(load_team(file), {"entry": "x", "hold": 3}, queue=scale.queue)
        slow = tmp_path / "slow.log"
        await asyncio.to_thread(wait_for, lambda: len(lines(slow)) == 1)
        victim = first if lines(slow)[0] == f"slow {first.pid}" else second
        if stop == "kill -9":  # mid-step: clerk is done and checkpointed, slow is sleeping
            victim.kill()
        else:  # a worker shut down mid-step hands the run over; it does not cancel it
            victim.process.terminate()
        # Until it ends, the run is never recorded "cancelled" (prune would delete it).
        statuses = await asyncio.to_thread(_statuses_until_ended, scale.db, run_id)
        result = await runs.settled(run_id)
        return run_id, victim, result, await runs.state(run_id), statuses

    run_id, victim, result, state, statuses = asyncio.run(go())
    assert "cancelled" not in statuses, statuses
    assert result.status == "completed", result.errors
    survivor = second if victim is first else first
    slow = lines(tmp_path / "slow.log")
    assert slow == [f"slow {victim.pid}", f"slow {survivor.pid}"]  # the unfinished step again
    assert len(lines(tmp_path / "effects.log")) == 1  # the tool's effect happened once
    with load_team(file).compile(db=tmp_path / "clean.db") as app:
        clean = app.run({"entry": "x", "hold": 0})
    assert result.usage == clean.usage  # clerk's model calls once each, not billed again
    assert result.path == ["clerk", "slow"]
    assert state.activities == 1  # one activity, retried by Temporal on the other worker
    seen = record(scale.db, run_id)
    assert seen["status"] == "completed"
    assert "run_cancelled" not in seen["events"]


def _statuses_until_ended(db: Path, run_id: str) -> list[str]:
    seen: list[str] = []
    while not seen or seen[-1] not in ("completed", "failed", "halted"):
        status = record(db, run_id)["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        assert len(seen) < 10, seen
        time.sleep(0.02)
    return seen


def test_a_review_waits_holding_no_worker_and_an_approval_resumes_it_anywhere(
    scale: Scale, team: Callable[..., Path], tmp_path: Path
) -> None:
    file = team(review="true")
    workers = scale.start(file, 2)

    async def pause() -> tuple[str, Any, str]:
        runs = await Dispatcher.connect(scale.target, heartbeat_seconds=2)
        run_id = await runs.submit(load_team(file), {"entry": "x", "hold": 0}, queue=scale.queue)
        dropped = await runs.submit(load_team(file), {"entry": "y", "hold": 0}, queue=scale.queue)
        assert (await runs.settled(dropped)).status == "paused"
        await runs.cancel(dropped)  # cancelled while it waits: no activity to cancel
        with pytest.raises(RunError, match="cancelled"):
            await runs.settled(dropped)
        gone = record(scale.db, dropped)
        assert (gone["status"], gone["events"].count("run_cancelled")) == ("cancelled", 1)
        paused = await runs.settled(run_id)
        return run_id, paused, (await runs.state(run_id)).workers[0]

    run_id, paused, ran = asyncio.run(pause())
    first, second = sorted(workers, key=lambda w: ran.split("@")[0] != str(w.pid))
    assert ran.split("@")[0] == str(first.pid)
    assert paused.status == "paused"
    assert record(scale.db, run_id)["status"] == "paused"
    first.process.terminate()  # the worker that ran it goes away
    first.process.wait(15)

    async def approve() -> tuple[Any, Any, Any]:
        runs = await Dispatcher.connect(scale.target, heartbeat_seconds=2)
        handle = runs.client.get_workflow_handle(PREFIX + run_id)
        described = await handle.describe()
        waiting = list(described.raw_description.pending_activities)
        with pytest.raises(InputError, match="the decision was refused"):
            await runs.decide(run_id, edit={"status": 7})  # not a Posted: refused
        assert (await runs.state(run_id)).state == "paused"  # still waiting for a person
        done = await runs.decide(run_id, approve=True)
        return waiting, done, await runs.state(run_id)

    waiting, done, state = asyncio.run(approve())
    assert waiting == []  # while paused, no activity is scheduled or running
    assert done.status == "completed", done.errors
    assert done.output is not None
    assert done.output["entry"] == "x"
    assert [w.split("@")[0] for w in state.workers] == [str(first.pid), str(second.pid)]
    assert len(lines(tmp_path / "effects.log")) == 2  # one post for each of the two runs


def test_the_cli_on_workers_prints_what_an_embedded_run_prints_and_sends_decisions(
    scale: Scale, team: Callable[..., Path], tmp_path: Path
) -> None:
    file = team(review="true")
    scale.start(file)
    entry = {"entry": "refund INV-7", "hold": 0}
    how = ("--temporal", scale.target, "--queue", scale.queue, "--json")
    paused = run_cli(
        "run", file, "--input", json.dumps(entry), *how, "--run-id", "r1", cwd=tmp_path
    )
    assert paused.code == 4, paused.stderr
    hint = f"corral resume r1 --temporal {scale.target} --queue {scale.queue} --approve"
    assert hint in " ".join(paused.stderr.split())
    again = run_cli("run", file, "--input", json.dumps(entry), *how, "--run-id", "r1", cwd=tmp_path)
    undecided = run_cli("resume", "r1", *how, cwd=tmp_path)  # its workflow waits for a decision
    here = ("--db", scale.db, "--team", file)  # not through Temporal: its workflow waits
    embedded = run_cli("resume", "r1", "--approve", *here, cwd=tmp_path)
    for refused, said in (
        (again, "is already open on Temporal"),
        (undecided, "is still open"),
        (embedded, "waits in its Temporal workflow"),
    ):
        assert (refused.code, "Traceback" in refused.stderr) == (2, False), refused.stderr
        assert said in " ".join(refused.stderr.split())
    settled = run_cli("resume", "--approve-all", *here, cwd=tmp_path)
    assert settled.code == 0, settled.stderr
    assert "r1: left waiting: its Temporal workflow waits" in settled.stdout
    assert record(scale.db, "r1")["status"] == "paused"
    done = run_cli("resume", "r1", "--approve", *how, cwd=tmp_path)  # the decide signal
    assert done.code == 0, done.stderr
    ended = run_cli("run", file, "--input", json.dumps(entry), *how, "--run-id", "r1", cwd=tmp_path)
    assert (ended.code, "Traceback" in ended.stderr) == (2, False), ended.stderr
    assert "error: run 'r1' already exists (completed)" in ended.stderr  # as embedded
    with load_team(file).compile(db=tmp_path / "embedded.db") as app:
        assert paused.json == app.run(entry, run_id="r1").to_dict()
        assert done.json == app.resume("r1", approve=True).to_dict()
    assert done.json["path"] == ["clerk", "slow"]
    assert record(scale.db, "r1")["status"] == "completed"  # in the workers' workspace


def test_a_worker_does_not_resume_a_run_a_live_process_drives(
    scale: Scale, team: Callable[..., Path], tmp_path: Path
) -> None:
    file = team()
    scale.start(file)
    entry = json.dumps({"entry": "x", "hold": 6})
    command = ["run", str(file), "--input", entry, "--db", str(scale.db), "--run-id", "held"]
    embedded = subprocess.Popen(
        [sys.executable, "-m", "corral", *command, "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(lines(tmp_path / "slow.log")) == 1)  # mid-step, held by it

        async def resume() -> None:
            runs = await Dispatcher.connect(scale.target, heartbeat_seconds=1)
            await runs.resume("held", queue=scale.queue)

        with pytest.raises(InputError, match="is running in process"):
            asyncio.run(resume())
        out, err = embedded.communicate(timeout=60)
    finally:
        embedded.kill()
    assert embedded.returncode == 0, err
    assert json.loads(out)["status"] == "completed"
    assert len(lines(tmp_path / "slow.log")) == 1  # each step ran once, in one process
    assert len(lines(tmp_path / "effects.log")) == 1


def test_cancelling_a_run_cancels_its_activity_and_records_it_then_it_resumes(
    scale: Scale, team: Callable[..., Path], tmp_path: Path
) -> None:
    file = team()
    (worker,) = scale.start(file)

    async def go() -> Any:
        runs = await Dispatcher.connect(scale.target, heartbeat_seconds=1)
        run_id = await runs.submit(load_team(file), {"entry": "x", "hold": 8}, queue=scale.queue)
        await asyncio.to_thread(wait_for, lambda: len(lines(tmp_path / "slow.log")) == 1)
        await runs.cancel(run_id)
        with pytest.raises(RunError, match="cancelled"):
            await asyncio.wait_for(runs.settled(run_id), 20)
        seen = record(scale.db, run_id)
        again = await runs.resume(run_id, queue=scale.queue)  # from its last checkpoint
        return seen, again

    seen, again = asyncio.run(go())
    assert seen["status"] == "cancelled"
    assert seen["errors"][0]["message"].startswith("cancelled: ")
    assert seen["events"].count("run_cancelled") == 1
    assert again.status == "completed", again.errors
    assert len(lines(tmp_path / "effects.log")) == 1  # clerk finished before: not again
    assert len(lines(tmp_path / "slow.log")) == 2  # the cancelled step ran again
    how = ("--temporal", scale.target, "--queue", scale.queue, "--run-id", "c2")
    entry = json.dumps({"entry": "x", "hold": 20})  # the CLI's heartbeats: 8 s apart
    (tmp_path / "slow.log").unlink()  # so that the slow step holds again
    waiting = subprocess.Popen(  # `corral run --temporal` waits; the run is cancelled
        [sys.executable, "-m", "corral", "run", str(file), "--input", entry, *how],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(lines(tmp_path / "slow.log")) == 1)

        async def cancel() -> None:
            await (await Dispatcher.connect(scale.target)).cancel("c2")

        asyncio.run(cancel())
        _, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 6, err  # the CLI's exit status for a cancelled run
    assert "was cancelled" in err
    assert record(scale.db, "c2")["status"] == "cancelled"
    worker.kill()  # not waiting for the cancelled step's sleeping thread to end


def test_a_cooldown_waits_on_a_durable_timer_then_the_run_goes_on(
    scale: Scale, tmp_path: Path
) -> None:
    runaway = ROOT / "examples" / "runaway"
    text = (
        (runaway / "team.yaml")
        .read_text()
        .replace(
            "task_rate: {count: 50, per_seconds: 3600}", "task_rate: {count: 10, per_seconds: 1}"
        )
        .replace("cooldown_seconds: 600", "cooldown_seconds: 1")
    )
    (tmp_path / "script.yaml").write_text((runaway / "script.yaml").read_text())
    (tmp_path / "team.yaml").write_text(text)
    scale.start(tmp_path / "team.yaml")

    async def go() -> Any:
        runs = await Dispatcher.connect(scale.target, heartbeat_seconds=2)
        run_id = await runs.submit(
            load_team(tmp_path / "team.yaml"), {"goal": "g"}, queue=scale.queue
        )
        states = []
        while len(states) < 400 and (not states or states[-1].activities < 3):
            states.append(await runs.state(run_id))
            await asyncio.sleep(0.05)
        handle = runs.client.get_workflow_handle(PREFIX + run_id)
        timers = [
            e.event_type
            async for e in handle.fetch_history_events()
            if e.HasField("timer_started_event_attributes")
        ]
        query = f"WorkflowType = 'CorralFanout' AND WorkflowId STARTS_WITH '{FANOUT}{run_id}/'"
        rounds = [w.id async for w in runs.client.list_workflows(query)]
        await runs.cancel(run_id)
        return run_id, states, timers, rounds

    run_id, states, timers, rounds = asyncio.run(go())
    # only the lead's rounds fan out; a subtask's own rounds (ids {task id}/r{n}, the
    # task id itself {key}/r{n}.{i}) run inside its activity, so no slot waits on a slot
    assert rounds
    assert all(w.removeprefix(f"{FANOUT}{run_id}/").count("/r") == 1 for w in rounds), rounds
    assert states[-1].activities >= 3  # halted, waited out the cooldown, resumed: twice
    assert "cooling" in [s.state for s in states]
    assert len(timers) >= 2  # each wait a durable timer in the workflow's history
    with sqlite3.connect(scale.db) as conn:
        created = conn.execute("SELECT count(*) FROM tasks WHERE run_id = ?", (run_id,)).fetchone()
        waits = conn.execute(
            "SELECT data FROM events WHERE run_id = ? AND kind = 'workflow_wait'", (run_id,)
        ).fetchall()
    assert created[0] > 10  # it did more work after the first cooldown than the rate allowed
    # each cooldown marked as its workflow's (``corral resume`` without --temporal refuses)
    assert len(waits) >= 2
    assert {json.loads(w[0])["for"] for w in waits} == {"cooldown"}


def test_a_review_deadline_is_a_durable_timer_and_its_policy_decides(
    scale: Scale, team: Callable[..., Path], tmp_path: Path
) -> None:
    file = team(review="{timeout_seconds: 2, on_timeout: approve}")
    scale.start(file)

    async def go() -> Any:
        runs = await Dispatcher.connect(scale.target, heartbeat_seconds=2)
        run_id = await runs.submit(load_team(file), {"entry": "x", "hold": 0}, queue=scale.queue)
        paused = await runs.settled(run_id)
        handle = runs.client.get_workflow_handle(PREFIX + run_id)
        return paused, await handle.result(), await runs.state(run_id)

    paused, done, state = asyncio.run(go())
    assert paused.status == "paused"
    assert paused.errors[0].review["deadline"]  # type: ignore[attr-defined]
    assert done["status"] == "completed"  # nobody decided: the deadline's policy approved
    assert state.activities == 2
    assert "review_expired" in record(scale.db, paused.run_id)["events"]
