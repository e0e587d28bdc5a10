"""A delegation round's subtasks spread across Temporal workers and joined by their
supervisor: a real dev server, ``corral worker`` subprocesses on one SQLite workspace."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral import load_team
from corral.scale import Dispatcher
from corral.scale._client import PREFIX
from corral.scale._subtasks import FANOUT_PREFIX
from tests.scale.conftest import Scale, wait_for

N = 12
TEAM = """\
version: 1
name: fan
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Ask: {{fields: {{question: str, hold: float}}}}
  Note: {{fields: {{text: str}}}}
agents:
  - {{id: lead, role: Lead, output: Note}}
  - {{id: hand, reports_to: lead, input: Ask, output: Note{hand}}}
flow:
  entry: lead
  input: Ask
  output: Note
  edges: [{{from: lead, to: END, schema: Note}}]
guards:
  max_subtasks: {n}
  max_pending_tasks: 1000
"""
MODEL_HAND = ", role: Hand"
FUNCTION_HAND = ', kind: function, function: "tools:work"'
TOOLS = """\
import os
import time
from pathlib import Path

HERE = Path(__file__).parent


def _log(line):
    with (HERE / "work.log").open("a") as f:
        f.write(line + "\\n")
        f.flush()
        os.fsync(f.fileno())


def work(ask):
    _log(f"start {ask.question} {os.getpid()}")
    time.sleep(ask.hold)
    _log(f"done {ask.question} {os.getpid()}")
    return {"text": "did " + ask.question}
"""


def script(n: int, hold: float) -> str:
    asks = "\n".join(
        f"        - {{assignee: hand, instruction: do {i}, "
        f"payload: {{question: q{i}, hold: {hold}}}}}"
        for i in range(n)
    )
    return (
        f"agents:\n  lead:\n    - delegate:\n{asks}\n    - output: {{text: all done}}\n"
        "  hand:\n    - {output: {text: done}, delay: 0.3}\nthen: repeat\n"
    )


@pytest.fixture
def fan(write: Callable[..., Path]) -> Callable[..., Path]:
    """The team file: ``hand`` a scripted agent (``model``) or a function that logs."""

    def make(hand: str, *, hold: float = 0.0) -> Path:
        write("script.yaml", script(N, hold))
        write("tools.py", TOOLS)
        body = MODEL_HAND if hand == "model" else FUNCTION_HAND
        return write("team.yaml", TEAM.format(hand=body, n=N))

    return make


async def fanouts(runs: Dispatcher, run_id: str) -> list[dict[str, Any]]:
    """Every subtask outcome the run's fan-out workflow returned (with their worker);
    the run has one (a retried supervisor joined it, rather than starting another)."""
    query = f"WorkflowType = 'CorralFanout' AND WorkflowId STARTS_WITH '{FANOUT_PREFIX}{run_id}/'"
    found = [listed async for listed in runs.client.list_workflows(query)]
    assert len(found) == 1, [f.id for f in found]
    outcomes: list[dict[str, Any]] = await runs.client.get_workflow_handle(found[0].id).result()
    return outcomes


def board(db: Path, run_id: str) -> dict[str, tuple[str, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT id, status, result FROM tasks WHERE run_id = ?", (run_id,)
        ).fetchall()
    return {task_id: (status, result) for task_id, status, result in rows}


def test_a_fan_out_spreads_over_workers_and_its_supervisor_joins_every_result(
    scale: Scale, fan: Callable[..., Path], tmp_path: Path
) -> None:
    file = fan("model")
    workers = scale.start(file, 3)

    async def go() -> Any:
        runs = await Dispatcher.connect(scale.target, heartbeat_seconds=2)
        result = await runs.run(load_team(file), {"question": "q", "hold": 0}, queue=scale.queue)
        return result, await fanouts(runs, result.run_id), await runs.state(result.run_id)

    result, outcomes, state = asyncio.run(go())
    assert result.status == "completed", result.errors
    assert sorted(o["task_id"] for o in outcomes) == sorted(board(scale.db, result.run_id))
    assert len(outcomes) == N
    ran_on = Counter(o["worker"].split("@")[0] for o in outcomes)
    assert len(ran_on) > 1, ran_on  # the subtasks ran on more than one worker
    assert set(ran_on) <= {str(w.pid) for w in workers}
    assert all(o["status"] == "done" for o in outcomes)
    assert state.activities == 1  # the supervisor's activity waited for its fan-out
    with load_team(file).compile(db=tmp_path / "embedded.db") as app:
        embedded = app.run({"question": "q", "hold": 0})
    # The join saw every result: each subtask's model call is counted once, and the
    # supervisor's second call read the same results text as in-process (input tokens).
    assert result.usage == embedded.usage
    assert result.usage["llm_calls"] == 2 + N
    assert result.output == embedded.output
    tasks = board(scale.db, result.run_id)
    alone = board(tmp_path / "embedded.db", embedded.run_id)
    assert sorted(tasks.values()) == sorted(alone.values())  # all done, the same results
    assert {status for status, _ in tasks.values()} == {"done"}


@pytest.mark.parametrize("whom", ["a subtask worker", "the supervisor's worker"])
def test_a_worker_killed_mid_fan_out_still_completes_each_subtask_once(
    scale: Scale, fan: Callable[..., Path], tmp_path: Path, whom: str
) -> None:
    file = fan("function", hold=1.0)
    workers = scale.start(file, 3, "--max-subtasks", "2")  # 6 at once: two waves of 6
    log = tmp_path / "work.log"

    def entries() -> list[tuple[str, str, int]]:
        found = []
        for line in log.read_text().splitlines() if log.exists() else []:
            what, question, pid = line.split()
            found.append((what, question, int(pid)))
        return found

    def unfinished(pid: int) -> set[str]:
        seen = entries()
        return {q for what, q, p in seen if what == "start" and p == pid} - {
            q for what, q, _ in seen if what == "done"
        }

    async def go() -> Any:
        runs = await Dispatcher.connect(scale.target, heartbeat_seconds=2)
        run_id = await runs.submit(load_team(file), {"question": "q", "hold": 0}, queue=scale.queue)
        # The second wave is running: kill a worker that runs some of it and not the
        # supervisor's activity, or the worker that runs the supervisor's activity.
        await asyncio.to_thread(
            wait_for, lambda: len({q for what, q, _ in entries() if what == "start"}) == N
        )
        described = await runs.client.get_workflow_handle(PREFIX + run_id).describe()
        pending = described.raw_description.pending_activities
        supervisor = {p.last_worker_identity.split("@")[0] for p in pending}
        assert len(supervisor) == 1
        if whom == "a subtask worker":
            victim = next(w for w in workers if unfinished(w.pid) and str(w.pid) not in supervisor)
        else:
            victim = next(w for w in workers if str(w.pid) in supervisor)
        done_before = {q for what, q, _ in entries() if what == "done"}
        victim.kill()
        result = await runs.settled(run_id)
        state = await runs.state(run_id)
        return result, victim, done_before, await fanouts(runs, run_id), state

    result, victim, done_before, outcomes, state = asyncio.run(go())
    assert result.status == "completed", result.errors
    seen = entries()
    done = Counter(q for what, q, _ in seen if what == "done")
    started = Counter(q for what, q, _ in seen if what == "start")
    assert set(done) == {f"q{i}" for i in range(N)}  # every subtask completed
    assert all(count == 1 for count in done.values()), done  # each exactly once
    assert all(started[q] == 1 for q in done_before)  # finished work never ran again
    killed = {q for what, q, pid in seen if what == "start" and pid == victim.pid} - {
        q for what, q, pid in seen if what == "done" and pid == victim.pid
    }
    if whom == "a subtask worker":
        assert killed  # the victim died mid-subtask, and those ran again elsewhere
    else:  # the supervisor went on elsewhere and joined the same fan-out (one workflow)
        assert state.workers[-1].split("@")[0] != str(victim.pid)
    assert all(started[q] == 2 for q in killed)
    assert len(done_before) >= N // 2  # the first wave had finished before the kill
    by_question = {o["result"]["text"].split()[-1]: o for o in outcomes}
    assert all(by_question[q]["worker"].split("@")[0] != str(victim.pid) for q in killed)
    ran = {o["task_id"]: o for o in outcomes}
    assert len(ran) == N
    assert all(o["status"] == "done" for o in ran.values())
    tasks = board(scale.db, result.run_id)
    assert len(tasks) == N
    assert {status for status, _ in tasks.values()} == {"done"}
