"""Budgets: each layer trips at its limit, alerts fire once, days reset, no overshoot."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from corral import Alert, InputError, load_team
from tests.conftest import run_unblocked

TEAM = """\
version: 1
name: budgeted
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Question: {{fields: {{text: str}}}}
  Answer: {{fields: {{text: str, score: {{type: int, ge: 0, le: 10}}}}}}
agents:
  - id: solver
    role: Solver
    budget: {budget}
flow:
  entry: solver
  input: Question
  output: Answer
  edges: [{{from: solver, to: END, schema: Answer}}]
guards: {{max_llm_calls_per_task: 20}}
"""
QUESTION = {"text": "what is the answer to everything?"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # 2027-01-15

    def __call__(self) -> float:
        return self.now


def team(write: Callable[..., Path], budget: str, script: str = "replies: []\n") -> Any:
    write("script.yaml", script)
    return load_team(write("team.yaml", TEAM.format(budget=budget)))


def rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT status, input_tokens, output_tokens, reserved, day FROM usage ORDER BY id"
        ).fetchall()


def one_call(write: Callable[..., Path], tmp_path: Path) -> tuple[int, int]:
    """Input and output tokens of the solver's one call (measured, not assumed)."""
    with team(write, "{max_output_tokens: 100}").compile(db=tmp_path / "probe.db") as app:
        assert app.run(QUESTION).ok
    ((_, used_in, used_out, _, _),) = rows(tmp_path / "probe.db")
    return used_in, used_out


def test_daily_tokens_trip_exactly_at_the_limit(write: Callable[..., Path], tmp_path: Path) -> None:
    used_in, used_out = one_call(write, tmp_path)
    limit = 3 * (used_in + used_out) + used_in + 100  # room for exactly 4 calls
    db = tmp_path / "w.db"
    with team(write, f"{{max_output_tokens: 100, daily_tokens: {limit}}}").compile(db=db) as app:
        results = [app.run(QUESTION) for _ in range(6)]
    assert [r.status for r in results] == ["completed"] * 4 + ["halted"] * 2
    trip = results[4].errors[0].to_dict()
    assert (trip["guard"], trip["layer"], trip["limit"]) == ("budget", "daily_tokens", limit)
    assert (trip["used"], trip["requested"]) == (4 * (used_in + used_out), used_in + 100)
    assert sum(r[1] + r[2] for r in rows(db) if r[0] == "settled") <= limit


def test_call_and_task_layers(write: Callable[..., Path], tmp_path: Path) -> None:
    used_in, _ = one_call(write, tmp_path)
    with team(write, f"{{max_input_tokens: {used_in - 1}}}").compile(db=tmp_path / "a.db") as app:
        refused = app.run(QUESTION)
    assert refused.status == "halted"
    assert (refused.errors[0].layer, refused.errors[0].requested) == (
        "max_input_tokens",
        used_in,
    )
    trimmed = team(write, f"{{max_input_tokens: {used_in - 5}, trim_input: true}}")
    with trimmed.compile(db=tmp_path / "b.db") as app:
        assert app.run(QUESTION).status == "completed"
    assert rows(tmp_path / "b.db")[0][1] <= used_in - 5  # the prompt was cut to fit

    bad = "agents:\n  solver:\n    - raw: a\n    - raw: b\n    - raw: c\n"
    with team(write, "{max_task_calls: 2}", bad).compile(db=tmp_path / "c.db") as app:
        capped = app.run(QUESTION)
    assert (capped.status, capped.errors[0].layer, capped.errors[0].used) == (
        "halted",
        "task_calls",
        2,
    )

    with team(write, "{max_output_tokens: 5}").compile(db=tmp_path / "d.db") as app:
        cut = app.run(QUESTION)
    assert cut.status == "failed"  # every answer was cut off at 5 tokens, so invalid
    assert {r[2] for r in rows(tmp_path / "d.db")} == {5}


def test_alert_fires_once_at_the_threshold(
    write: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    used_in, used_out = one_call(write, tmp_path)
    per_run = used_in + used_out
    limit = 10 * per_run
    alerts: list[Alert] = []
    budget = f"{{max_output_tokens: 100, daily_tokens: {limit}, alert_threshold: 0.25}}"
    with (
        caplog.at_level(logging.WARNING, logger="corral.budget"),
        team(write, budget).compile(db=tmp_path / "w.db", on_budget_alert=alerts.append) as app,
    ):
        for _ in range(5):
            assert app.run(QUESTION).ok
        events = [e for r in app.list_runs() for e in app.events.list(r.run_id, "budget_alert")]
    assert len(alerts) == 1
    assert (alerts[0].agent, alerts[0].layer, alerts[0].limit) == ("solver", "daily_tokens", limit)
    assert alerts[0].used == 3 * per_run  # the first run at or over 25%
    assert len(events) == 1
    assert sum("budget alert: solver" in r.message for r in caplog.records) == 1


def test_soft_budget_only_alerts(write: Callable[..., Path], tmp_path: Path) -> None:
    used_in, used_out = one_call(write, tmp_path)
    budget = f"{{max_output_tokens: 100, daily_tokens: {used_in + used_out}, hard_stop: false}}"
    alerts: list[Alert] = []
    with team(write, budget).compile(db=tmp_path / "w.db", on_budget_alert=alerts.append) as app:
        assert all(app.run(QUESTION).ok for _ in range(3))
    assert len(alerts) == 1


def test_days_reset_and_a_halted_run_resumes_when_the_budget_allows(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    used_in, used_out = one_call(write, tmp_path)
    clock = Clock()
    budget = f"{{max_output_tokens: 100, daily_tokens: {used_in + used_out + used_in + 100}}}"
    with team(write, budget).compile(db=tmp_path / "w.db", clock=clock) as app:
        assert app.run(QUESTION).ok
        assert app.run(QUESTION).ok
        halted = app.run(QUESTION, run_id="late")
        assert halted.status == "halted"
        assert app.resume("late").status == "halted"  # same day: still no budget
        clock.now += 86_400
        assert app.resume("late").status == "completed"
    assert [r[4] for r in rows(tmp_path / "w.db") if r[0] == "settled"] == [
        "2027-01-15",
        "2027-01-15",
        "2027-01-16",
    ]


def test_team_budget_and_escalation_to_the_supervisor(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write(
        "script.yaml",
        "agents:\n  lead:\n    - delegate: [{assignee: worker, "
        "instruction: go, payload: {text: x}}]\n",
    )
    text = """\
        version: 1
        name: pair
        models: {default: {use: scripted, script: script.yaml}}
        schemas:
          Question: {fields: {text: str}}
        agents:
          - {id: lead, role: Lead, output: Question}
          - {id: worker, role: Worker, reports_to: lead, input: Question, output: Question,
             budget: {daily_tokens: 10}}
        flow:
          entry: lead
          input: Question
          output: Question
          edges: [{from: lead, to: END, schema: Question}]
        guards: {on_trip: {budget: escalate}}
        """
    with load_team(write("pair.yaml", text)).compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"})
        tasks = app.board.tasks(run_id=result.run_id)
    assert result.status == "completed"  # the lead got the failure and answered itself
    assert [(t.assignee, t.status) for t in tasks] == [("worker", "failed")]
    assert "daily_tokens budget" in (tasks[0].error or "")
    assert [(g["guard"], g["policy"]) for g in result.guards_tripped] == [("budget", "escalate")]


PROCESS = textwrap.dedent("""
    import asyncio, sys
    from corral import load_team
    async def main():
        with load_team(sys.argv[1]).compile(db=sys.argv[2]) as app:
            results = await asyncio.gather(*(app.arun({"text": "what is the answer?"})
                                             for _ in range(25)))
        print(sum(r.status == "completed" for r in results),
              sum(r.status == "halted" for r in results))
    asyncio.run(main())
""")


def test_no_overshoot_with_4_processes_of_25_concurrent_runs(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    used_in, used_out = one_call(write, tmp_path)
    limit = 30 * (used_in + used_out)
    path = team(write, f"{{max_output_tokens: 100, daily_tokens: {limit}}}").source
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS, str(path), str(tmp_path / "w.db")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    done = halted = 0
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
        ok, stopped = map(int, out.split())
        done, halted = done + ok, halted + stopped
    assert done + halted == 100
    spent = sum(r[1] + r[2] for r in rows(tmp_path / "w.db") if r[0] == "settled")
    assert spent <= limit + 100  # at most one call's maximum output over
    # Reservations hold input + maximum output while a call is in flight, so at worst
    # this many calls fit at once; at least that many runs must have completed.
    assert done >= limit // (used_in + 100)
    assert halted >= 100 - 30


def test_concurrent_runs_in_one_process_share_the_budget(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    used_in, used_out = one_call(write, tmp_path)
    limit = 7 * (used_in + used_out)
    with team(write, f"{{max_output_tokens: 100, daily_tokens: {limit}}}").compile(
        db=tmp_path / "w.db"
    ) as app:

        async def many() -> list[Any]:
            return await asyncio.gather(*(app.arun(QUESTION) for _ in range(20)))

        results = run_unblocked(many())
    assert limit // (used_in + 100) <= sum(r.ok for r in results) <= 7
    assert {r.status for r in results} == {"completed", "halted"}
    spent = sum(r[1] + r[2] for r in rows(tmp_path / "w.db") if r[0] == "settled")
    assert spent <= limit


def test_a_budget_halted_run_resumes_during_a_creation_cooldown(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    # The workspace's creation cooldown holds back runs the creation rate halted; a run
    # its budget halted goes on once the limit is raised, cooldown or not.
    db = tmp_path / "w.db"
    write("script.yaml", "agents:\n  solver:\n    - raw: a\n")
    with load_team(write("team.yaml", TEAM.format(budget="{max_task_calls: 1}"))).compile(
        db=db
    ) as app:
        halted = app.run(QUESTION, run_id="b1")
    assert halted.status == "halted"
    with closing(sqlite3.connect(db)) as conn, conn:  # another run tripped the rate just now
        conn.execute(
            "INSERT OR REPLACE INTO guard_state VALUES ('cooldown_until', ?)", (time.time() + 3600,)
        )
    with load_team(write("team.yaml", TEAM.format(budget="{max_task_calls: 5}"))).compile(
        db=db
    ) as app:
        assert app.book.cooling("b1") is None
        resumed = app.resume("b1")
    assert resumed.status == "completed", resumed.errors


def _raising_hook(alert: Alert) -> None:
    raise RuntimeError("the pager is down")


async def _page(alert: Alert) -> None:
    """Never awaited: recorded."""


def _coroutine_hook(alert: Alert) -> Any:  # a plain function handing back a coroutine
    return _page(alert)


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (_raising_hook, "the pager is down"),
        (_coroutine_hook, "it returned a coroutine, which is never awaited: give a plain function"),
    ],
)
def test_a_budget_alert_hook_that_fails_is_recorded_and_the_run_goes_on(
    write: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    hook: Callable[[Alert], Any],
    message: str,
) -> None:
    """Before: the hook's error became the model call's ("model call of agent 'solver'
    failed (not retryable): RuntimeError: ...") and failed a run whose call had answered;
    a hook returning a coroutine silently did nothing (it was never awaited)."""
    budget = "{daily_tokens: 1000000, alert_threshold: 0.000001, hard_stop: false}"
    with (
        caplog.at_level(logging.ERROR, logger="corral.budget"),
        team(write, budget).compile(db=tmp_path / "w.db", on_budget_alert=hook) as app,
    ):
        result = app.run(QUESTION, run_id="r1")
        assert (result.status, result.errors) == ("completed", [])
        failures = [e for e in app.trace("r1") if e.kind == "failure"]
    assert [f.detail["message"] for f in failures] == [message]
    assert "the on_budget_alert hook raised" in caplog.text


class _AsyncPager:
    async def __call__(self, alert: Alert) -> None:
        """Never awaited: refused at compile."""


def test_an_async_budget_hook_object_is_refused_at_compile(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: an object with an ``async def __call__`` was accepted and never awaited."""
    budget = "{daily_tokens: 1000000, alert_threshold: 0.000001, hard_stop: false}"
    with pytest.raises(InputError, match="an async one would never be awaited"):
        team(write, budget).compile(db=tmp_path / "w.db", on_budget_alert=_AsyncPager())
