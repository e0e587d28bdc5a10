"""Guards and reviews across Temporal workers on one Postgres workspace: the runaway team
submitted four times at once, a daily budget shared by every worker, and a review that
waits holding no worker and is approved through the API and the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg

from corral import load_team, open_workspace
from corral.scale import Dispatcher
from corral.scale._client import PREFIX
from tests.conftest import ROOT, run_cli
from tests.guards.test_budgets import TEAM as BUDGETED
from tests.scale.conftest import Scale
from tests.scale.test_temporal import SCRIPT as BOOKS_SCRIPT
from tests.scale.test_temporal import TEAM as BOOKS
from tests.scale.test_temporal import TOOLS as BOOKS_TOOLS

RATE, PENDING = 30, 10
WAITING = "SELECT count(*) FROM tasks WHERE status IN ('pending', 'claimed')"


def test_the_runaway_team_four_times_at_once_stays_within_the_workspace_limits(
    pg_scale: Scale, tmp_path: Path
) -> None:
    runaway = ROOT / "examples" / "runaway"
    text = (
        (runaway / "team.yaml")
        .read_text()
        .replace("task_rate: {count: 50,", f"task_rate: {{count: {RATE},")
        .replace("max_pending_tasks: 500", f"max_pending_tasks: {PENDING}")
    )
    (tmp_path / "script.yaml").write_text((runaway / "script.yaml").read_text())
    file = tmp_path / "team.yaml"
    file.write_text(text)
    pg_scale.start(file, 3)
    team = load_team(file)
    workspace = open_workspace(str(pg_scale.db))
    pending: list[int] = []
    records: list[Any] = []

    async def go() -> list[str]:
        runs = await Dispatcher.connect(pg_scale.target, heartbeat_seconds=2)
        ids = await asyncio.gather(
            *(runs.submit(team, {"goal": f"g{i}"}, queue=pg_scale.queue) for i in range(4))
        )
        states: list[str] = []
        for _ in range(1200):  # each halts at a limit and waits out its cooldown
            pending.append(waiting.execute(WAITING).fetchone()[0])  # one snapshot, as the
            # guard counts (two counts would see a task claimed between them twice)
            states = [(await runs.state(i)).state for i in ids]
            if all(s in ("cooling", "done") for s in states):
                break
            await asyncio.sleep(0.05)
        records.extend(workspace.runs.get(i) for i in ids)  # before cancelling the cooling
        for run_id, state in zip(ids, states, strict=True):
            if state == "cooling":
                await runs.cancel(run_id)
        return states

    waiting = psycopg.connect(str(pg_scale.db), autocommit=True)
    try:
        states = asyncio.run(go())
        tasks = workspace.board.tasks()
    finally:
        waiting.close()
        workspace.close()
    assert set(states) <= {"cooling", "done"}, states  # a cooldown waits; a pending limit ends
    assert [r.status for r in records if r is not None] == ["halted"] * 4
    assert len({t.run_id for t in tasks}) == 4  # every run delegated
    assert 0 < len([t for t in tasks if t.status != "refused"]) <= RATE
    assert max(pending) <= PENDING
    assert len({t.id for t in tasks}) == len(tasks)


def test_a_daily_budget_shared_by_three_workers_is_overshot_by_at_most_one_call(
    pg_scale: Scale, tmp_path: Path
) -> None:
    (tmp_path / "script.yaml").write_text("replies: []\n")
    probe = tmp_path / "probe.yaml"
    probe.write_text(BUDGETED.format(budget="{max_output_tokens: 100}"))
    with load_team(probe).compile(db=tmp_path / "probe.db") as app:
        one = app.run({"text": "what is the answer to everything?"})
    per_call = one.usage["input_tokens"] + one.usage["output_tokens"]
    limit = 10 * per_call
    file = tmp_path / "team.yaml"
    file.write_text(BUDGETED.format(budget=f"{{max_output_tokens: 100, daily_tokens: {limit}}}"))
    pg_scale.start(file, 3)

    async def go() -> list[Any]:
        runs = await Dispatcher.connect(pg_scale.target, heartbeat_seconds=2)
        team = load_team(file)
        ids = await asyncio.gather(
            *(
                runs.submit(
                    team, {"text": "what is the answer to everything?"}, queue=pg_scale.queue
                )
                for _ in range(30)
            )
        )
        return list(await asyncio.gather(*(runs.settled(i) for i in ids)))

    results = asyncio.run(go())
    statuses = [r.status for r in results]
    workspace = open_workspace(str(pg_scale.db))
    try:
        spent = sum(
            c["input_tokens"] + c["output_tokens"]
            for r in results
            for c in workspace.ledger.calls(r.run_id)
            if c["status"] == "settled"
        )
    finally:
        workspace.close()
    assert set(statuses) == {"completed", "halted"}, statuses
    assert spent <= limit + 100  # at most one call's maximum output over
    assert statuses.count("completed") >= limit // (per_call + 100)  # reservations at worst
    assert statuses.count("halted") >= 30 - 10


def test_a_review_on_postgres_holds_no_worker_and_the_api_or_the_cli_resumes_it(
    pg_scale: Scale, tmp_path: Path
) -> None:
    (tmp_path / "script.yaml").write_text(BOOKS_SCRIPT)
    (tmp_path / "tools.py").write_text(BOOKS_TOOLS)
    file = tmp_path / "team.yaml"
    file.write_text(BOOKS.format(suffix="_reviewed", review=", review: true"))
    first, second = pg_scale.start(file, 2)
    how = ("--temporal", pg_scale.target, "--queue", pg_scale.queue, "--json")
    entry = json.dumps({"entry": "x", "hold": 0})
    for run_id in ("cli", "api"):
        paused = run_cli("run", file, "--input", entry, *how, "--run-id", run_id, cwd=tmp_path)
        assert paused.code == 4, paused.stderr
        assert paused.json["status"] == "paused"

    async def held() -> list[Any]:
        runs = await Dispatcher.connect(pg_scale.target, heartbeat_seconds=2)
        return [
            list(
                (
                    await runs.client.get_workflow_handle(PREFIX + i).describe()
                ).raw_description.pending_activities
            )
            for i in ("cli", "api")
        ]

    assert asyncio.run(held()) == [[], []]  # while paused, no activity is scheduled
    workspace = open_workspace(str(pg_scale.db))
    try:
        assert [workspace.runs.get(i).status for i in ("cli", "api")] == ["paused"] * 2  # type: ignore[union-attr]
        for worker in (first, second):  # every worker that paused them goes; a new one comes
            worker.process.terminate()
            worker.process.wait(15)
        (third,) = pg_scale.start(file)
        done = run_cli("resume", "cli", "--approve", *how, cwd=tmp_path)
        assert done.code == 0, done.stderr
        assert done.json["status"] == "completed"

        async def approve() -> Any:
            runs = await Dispatcher.connect(pg_scale.target, heartbeat_seconds=2)
            result = await runs.decide("api", approve=True)
            return result, await runs.state("api")

        result, state = asyncio.run(approve())
        assert result.status == "completed", result.errors
        assert state.workers[-1].split("@")[0] == str(third.pid)
        assert [workspace.runs.get(i).status for i in ("cli", "api")] == ["completed"] * 2  # type: ignore[union-attr]
    finally:
        workspace.close()
    assert len((tmp_path / "effects.log").read_text().splitlines()) == 2  # one post per run
