"""Temporal workers over one Postgres workspace: three ``corral worker`` processes, one
throwaway Postgres cluster, one Temporal dev server; workers killed with SIGKILL mid-run,
again and again, while a delegating team's runs go through."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from corral import load_team, open_workspace
from corral.scale import Dispatcher
from corral.scale._client import PREFIX
from tests.scale.conftest import Scale, Worker

RUNS = int(os.environ.get("CORRAL_SCALE_RUNS", "100"))
"""Runs in the kill trial (the issue's 100; 47 s on a quiet machine)."""
KILLS = int(os.environ.get("CORRAL_SCALE_KILLS", "6"))

DESK = """\
version: 1
name: desk
models:
  default: {use: scripted, script: script.yaml}
schemas:
  Ask: {fields: {question: str}}
  Note: {fields: {text: str}}
tools:
  post: {import: "tools:post", idempotent: true}
agents:
  - {id: lead, role: Lead, output: Note}
  - {id: clerk, role: Clerk, reports_to: lead, input: Ask, output: Note, tools: [post]}
  - {id: dev, role: Developer, reports_to: lead, input: Ask, output: Note, tools: [post]}
flow:
  entry: lead
  input: Ask
  output: Note
  edges: [{from: lead, to: END, schema: Note}]
"""
SCRIPT = """\
agents:
  lead:
    - delegate:
        - {assignee: clerk, instruction: refund it, payload: {question: refund}}
        - {assignee: dev, instruction: fix it, payload: {question: crash}}
      delay: 0.3
    - {output: {text: both done}, delay: 0.3}
  clerk:
    - {tool: {name: post, args: {entry: refund}}, delay: 0.3}
    - {output: {text: refunded}, delay: 0.3}
  dev:
    - {tool: {name: post, args: {entry: patch}}, delay: 0.3}
    - {output: {text: patched}, delay: 0.3}
"""
TOOLS = '''\
import fcntl
import os
from pathlib import Path

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool

HERE = Path(__file__).parent


@tool
def post(entry: str, config: RunnableConfig) -> str:
    """Post an entry to the books, once per idempotency key (as a real API dedupes)."""
    key = config["metadata"]["corral_idempotency_key"]
    run = config["metadata"]["corral_run"]
    with (HERE / "calls.log").open("a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        seen = {line.split("\\t")[0] for line in f.read().splitlines()}
        f.write(f"{key}\\t{run}\\t{entry}\\t{os.getpid()}\\n")
        f.flush()
        os.fsync(f.fileno())
    if key not in seen:
        with (HERE / "effects.log").open("a") as f:
            f.write(f"{key}\\t{run}\\t{entry}\\n")
            f.flush()
            os.fsync(f.fileno())
    return f"posted {entry}"
'''


@pytest.fixture
def desk(write: Callable[..., Path]) -> Path:
    write("script.yaml", SCRIPT)
    write("tools.py", TOOLS)
    return write("team.yaml", DESK)


def ready(worker: Worker) -> bool:
    return "worker ready" in worker.log.read_text()


def lines(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()] if path.exists() else []


async def retried(runs: Dispatcher, run_id: str) -> list[int]:
    """The attempt numbers of the run's activities that started (> 1: a retry)."""
    handle = runs.client.get_workflow_handle(PREFIX + run_id)
    return [
        e.activity_task_started_event_attributes.attempt
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_started_event_attributes")
    ]


async def running_on(runs: Dispatcher, run_ids: list[str], pid: int) -> list[str]:
    """The runs whose activity last started on the worker with process id ``pid``."""
    found = []
    for run_id in run_ids:
        described = await runs.client.get_workflow_handle(PREFIX + run_id).describe()
        for pending in described.raw_description.pending_activities:
            if pending.last_worker_identity.split("@")[0] == str(pid):
                found.append(run_id)
    return found


def billed_per_key(url: str, run_id: str) -> list[int]:
    """For each model call key of the run, its settled ledger rows (a settled call's
    row is the one its reply names; a row no reply names was billed again)."""
    with psycopg.connect(url) as conn:
        per_key = [
            int(n)
            for (n,) in conn.execute(
                "SELECT count(u.id) FROM model_replies r JOIN usage u ON u.id = r.usage_id "
                "AND u.status = 'settled' WHERE r.run_id = %s GROUP BY r.key",
                (run_id,),
            )
        ]
        unnamed = conn.execute(
            "SELECT count(*) FROM usage u WHERE u.run_id = %s AND u.status = 'settled' AND "
            "NOT EXISTS (SELECT 1 FROM model_replies r WHERE r.usage_id = u.id)",
            (run_id,),
        ).fetchone()
    assert unnamed is not None
    return per_key + [0] * int(unnamed[0])


def test_three_workers_on_postgres_finish_every_delegating_run_through_repeated_kill_9(
    pg_scale: Scale, desk: Path, tmp_path: Path
) -> None:
    scale = pg_scale
    options = ("--max-runs", "2")  # a small machine each: runs queue, kills land mid-run
    scale.start(desk, 3, *options)
    team = load_team(desk)
    killed: list[Worker] = []
    hit: dict[str, list[str]] = {}  # run id: the workers killed while running it
    rng = random.Random(15)

    async def go() -> tuple[list[Any], dict[str, list[int]], list[Any]]:
        runs = await Dispatcher.connect(scale.target, heartbeat_seconds=2)
        ids = [
            await runs.submit(team, {"question": f"q{i}"}, queue=scale.queue, run_id=f"r{i}")
            for i in range(RUNS)
        ]
        settling = [asyncio.ensure_future(runs.settled(i)) for i in ids]
        back = []
        for _ in range(KILLS):
            await asyncio.sleep(1.0)
            if all(s.done() for s in settling):
                break
            live = []
            while len(live) < 2:  # one worker at least stays up to take the runs over
                live = [w for w in scale.workers if w.process.poll() is None and ready(w)]
                await asyncio.sleep(0.1)
            victim = rng.choice(live)
            victim.kill()  # SIGKILL: mid-step, whatever it was doing
            # Its activities still show it as their worker until their heartbeat times out
            going = [i for i, s in zip(ids, settling, strict=True) if not s.done()]
            for run_id in await running_on(runs, going, victim.pid):
                hit.setdefault(run_id, []).append(str(victim.pid))
            killed.append(victim)
            # a machine comes back (while the next kill may already land)
            back.append(asyncio.ensure_future(asyncio.to_thread(scale.start, desk, 1, *options)))
        results = await asyncio.gather(*settling)
        await asyncio.gather(*back)
        attempts = {i: await retried(runs, i) for i in ids}
        return results, attempts, [await runs.state(i) for i in ids]

    results, attempts, states = asyncio.run(go())
    assert len(killed) == KILLS, "every kill landed while runs were still going"
    assert [r.status for r in results] == ["completed"] * RUNS, [r.errors for r in results]
    assert all(r.output == {"text": "both done"} for r in results)
    assert hit, "some kill hit a worker while it ran a run's activity"
    for run_id, state in zip([r.run_id for r in results], states, strict=True):
        if run_id in hit:  # Temporal retried its activity on another worker, which finished
            assert max(attempts[run_id]) > 1
            assert state.workers[-1].split("@")[0] not in hit[run_id]

    effects = lines(tmp_path / "effects.log")
    calls = lines(tmp_path / "calls.log")
    with team.compile(db=tmp_path / "clean.db") as app:
        clean = app.run({"question": "q"})
    assert Counter(run for _, run, _ in effects) == {r.run_id: 2 for r in results}
    assert sorted(e for _, run, e in effects if run == "r0") == ["patch", "refund"]
    assert len(calls) - len(effects) <= KILLS  # a call ran again only when a kill cut it
    workspace = open_workspace(str(scale.db))
    try:
        for result in results:
            # Killed mid-node or not, a run is billed as an uninterrupted run: the next
            # worker replays the node's model calls that finished (from their records)
            # and makes only the call a kill cut short. (Input tokens differ by ids and
            # question.)
            made, out = result.usage["llm_calls"], result.usage["output_tokens"]
            assert (made, out) == (clean.usage["llm_calls"], clean.usage["output_tokens"])
            billed = workspace.ledger.run_usage(result.run_id)
            keys = ("input_tokens", "output_tokens", "llm_calls")
            assert {k: billed[k] for k in keys} == {k: result.usage[k] for k in keys}
            settled = [c for c in workspace.ledger.calls(result.run_id) if c["status"] == "settled"]
            assert sum(c["input_tokens"] + c["output_tokens"] for c in settled) == (
                result.usage["input_tokens"] + result.usage["output_tokens"]
            )
            # one settled ledger row per call key: no call billed twice
            assert billed_per_key(str(scale.db), result.run_id) == [1] * len(settled)
            tasks = workspace.board.tasks(run_id=result.run_id)  # no subtask made twice
            assert sorted((t.assignee, t.status) for t in tasks) == [
                ("clerk", "done"),
                ("dev", "done"),
            ]
            record = workspace.runs.get(result.run_id)
            assert record is not None
            assert record.status == "completed"
    finally:
        workspace.close()
