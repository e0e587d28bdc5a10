"""Per-run limits (tokens, cost, deadline) and the loop guard (repeated tool calls, delegations)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from corral import DeadlinePassed, LoopDetected, load_team
from tests.graphs.test_stream import ORG
from tests.guards.test_delegation import org, sub
from tests.nodes.test_tools import run as run_clerk

SOLVER = """\
version: 1
name: limited
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Question: {{fields: {{text: str}}}}
  Answer: {{fields: {{text: str}}}}
agents:
  - {{id: solver, role: Solver}}
flow:
  entry: solver
  input: Question
  output: Answer
  edges: [{{from: solver, to: END, schema: Answer}}]
guards:
  retry: {{max_attempts: 5, initial_interval: 30, jitter: false}}
  {guards}
"""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def solver(write: Callable[..., Path], guards: str, script: str = "replies: []\n") -> Any:
    write("script.yaml", script)
    return load_team(write("team.yaml", SOLVER.format(guards=guards)))


def test_max_run_tokens_refuses_the_call_that_would_pass_it(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    team = solver(write, "max_run_tokens: 60")
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "what is the answer?"})
        calls = app.ledger.calls(result.run_id)
        trips = app.events.list(result.run_id, "guard_trip")
    assert result.status == "halted"
    error = result.errors[0]
    assert (error.guard, error.layer, error.limit) == ("budget", "max_run_tokens", 60)
    assert error.used + error.requested > 60
    assert all(c["status"] != "settled" for c in calls)  # refused before it was made
    assert trips[0]["guard"] == "budget"


def test_max_run_cost_usd_refuses_the_call_that_would_pass_it(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("script.yaml", "replies: []\n")
    priced = SOLVER.replace(
        "{{use: scripted, script: script.yaml}}",
        "{{use: scripted, script: script.yaml, price: {{input_per_mtok: 1000, "
        "output_per_mtok: 1000}}}}",  # USD 0.001 a token
    )
    team = load_team(write("team.yaml", priced.format(guards="max_run_cost_usd: 0.05")))
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "what is the answer?"})
        calls = app.ledger.calls(result.run_id)
    assert result.status == "halted"
    error = result.errors[0]
    assert (error.guard, error.layer, error.limit) == ("budget", "max_run_cost_usd", 0.05)
    assert error.used + error.requested > 0.05
    assert all(c["status"] != "settled" for c in calls)  # refused before it was made
    assert result.cost_usd == 0.0


def test_deadline_stops_a_backoff_pause_at_the_deadline(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    storm = "agents:\n  solver:\n" + "    - {error: rate_limit}\n" * 5
    team = solver(write, "run_deadline_seconds: 0.5", storm)
    started = time.perf_counter()
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"})
        trips = app.events.list(result.run_id, "guard_trip")
    took = time.perf_counter() - started
    assert result.status == "halted"
    assert isinstance(result.errors[0], DeadlinePassed)
    assert result.errors[0].limit == 0.5
    assert took < 20  # the 30 s backoff was cut short at the deadline
    assert [t["guard"] for t in trips] == ["run_deadline_seconds"]


def test_deadline_is_checked_before_each_model_call_on_the_injected_clock(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    clock = Clock()

    class Moves(BaseCallbackHandler):
        def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            clock.now += 120

    script = "agents:\n  solver:\n    - {raw: not an answer}\n"
    team = solver(write, "run_deadline_seconds: 60", script)
    with team.compile(db=tmp_path / "w.db", clock=clock) as app:
        result = app.run({"text": "q"}, config={"callbacks": [Moves()]})
        calls = app.ledger.calls(result.run_id)
    assert result.status == "halted"
    error = result.errors[0]
    assert isinstance(error, DeadlinePassed)
    assert (error.guard, error.limit, error.seen) == ("run_deadline_seconds", 60, 120)
    assert len(calls) == 1  # the second call was never made


def test_deadline_stops_the_wait_on_delegated_subtasks(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    script = (
        f"agents:\n  lead:\n    - delegate: [{sub('billing_mgr')}]\n"
        "  billing_mgr:\n    - {auto: true, delay: 5.0}\n"
    )
    team = org(write, script, extra="run_deadline_seconds: 0.5")
    started = time.perf_counter()
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "q"})
    assert time.perf_counter() - started < 4.5  # not the subtask's 5 s
    assert result.status == "halted"
    assert isinstance(result.errors[0], DeadlinePassed)
    assert "subtasks ran" in str(result.errors[0])


def test_the_same_tool_call_repeated_past_max_repeats_halts_naming_it(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    loop = "    - tool: {name: invoice_status, args: {invoice_id: again}}\n"
    result, _, calls = run_clerk(
        write, tmp_path, "agents:\n  clerk:\n" + loop * 4, rounds=5, guards="max_repeats: 2"
    )
    assert result.status == "halted"
    error = result.errors[0]
    assert isinstance(error, LoopDetected)
    assert (error.guard, error.limit, error.seen) == ("max_repeats", 2, 3)
    assert error.repeated == 'tool \'invoice_status\' with {"invoice_id": "again"}'
    assert calls == ["again", "again"]  # the third was refused before it ran


def test_a_repeated_tool_call_under_escalate_is_refused_and_the_agent_told(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    loop = "    - tool: {name: invoice_status, args: {invoice_id: again}}\n"
    result, seen, calls = run_clerk(
        write,
        tmp_path,
        "agents:\n  clerk:\n" + loop * 2,
        guards="max_repeats: 1, on_trip: {max_repeats: escalate}",
    )
    assert result.status == "completed"
    assert calls == ["again"]
    told = [str(m.content) for m in seen.calls[-1] if "max_repeats" in str(m.content)]
    assert told
    assert "tool 'invoice_status'" in told[0]


def test_a_supervisor_repeating_a_delegation_trips_the_loop_guard(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    again = f"    - delegate: [{sub('billing_mgr', 'same')}]\n"
    team = org(write, "agents:\n  lead:\n" + again * 3, extra="max_repeats: 2")
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "q"})
        created = app.events.list(result.run_id, "tasks_created")
    assert result.status == "halted"
    error = result.errors[0]
    assert isinstance(error, LoopDetected)
    assert error.repeated.startswith("delegate to 'billing_mgr' with ")
    assert '"question": "same"' in error.repeated
    assert len(created) == 2  # the third round was never created


ESCALATING = ORG + (  # a lead over a clerk whose calls per task run out
    "guards:\n  max_llm_calls_per_task: 2\n  max_validation_retries: 5\n"
    "  on_trip: {max_llm_calls_per_task: escalate}\n"
)


def test_a_subtask_past_its_calls_under_escalate_fails_back_to_its_supervisor(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write(
        "script.yaml",
        "agents:\n  lead:\n    - delegate: [{assignee: clerk, instruction: look, "
        "payload: {question: q}}]\n  clerk:\n    - raw: a\n    - raw: b\n    - raw: c\n",
    )
    with load_team(write("team.yaml", ESCALATING)).compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "why?"})
        failed = app.board.count(run_id=result.run_id, status="failed")
    assert result.status == "completed", result.errors
    assert [(g["guard"], g["policy"]) for g in result.guards_tripped] == [
        ("max_llm_calls_per_task", "escalate")
    ]
    assert failed == 1  # the subtask failed back to the lead, which answered


FALLING_BACK = """\
version: 1
name: fbcalls
models:
  flaky: {use: scripted, script: script.yaml}
  steady: {use: scripted, script: steady.yaml}
schemas:
  Question: {fields: {text: str}}
  Answer: {fields: {text: str}}
agents:
  - {id: solver, role: Solver, model: flaky, fallback: {model: steady}}
flow:
  entry: solver
  input: Question
  output: Answer
  edges: [{from: solver, to: END, schema: Answer}]
guards: {max_validation_retries: 2, max_llm_calls_per_task: 3}
"""


def test_a_fallback_model_s_calls_count_toward_the_task_s_calls(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("script.yaml", "agents:\n  solver:\n" + "    - {raw: 'not json'}\n" * 3)
    write("steady.yaml", "agents:\n  solver:\n    - {raw: 'not json'}\n    - auto: true\n")
    with load_team(write("team.yaml", FALLING_BACK)).compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"})
        calls = app.ledger.calls(result.run_id)
    assert result.status == "halted"  # the fallback's first call was the task's fourth
    assert [(g["guard"], g["limit"]) for g in result.guards_tripped] == [
        ("max_llm_calls_per_task", 3)
    ]
    assert len(calls) == 3


def test_a_step_a_fallback_model_answered_counts_the_failed_agent_s_calls_too(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("script.yaml", "agents:\n  solver:\n" + "    - {raw: 'not json'}\n" * 2)
    write("steady.yaml", "agents:\n  solver:\n    - auto: true\n")
    with load_team(write("team.yaml", FALLING_BACK)).compile(db=tmp_path / "w.db") as app:
        events = list(app.stream({"text": "q"}))
    step = next(e for e in events if e.kind == "step")
    finished = events[-1]
    assert finished.status == "completed"  # type: ignore[union-attr]
    assert step.llm_calls == 3  # type: ignore[union-attr]  # two unusable, then the fallback's
    used = step.input_tokens + step.output_tokens  # type: ignore[union-attr]
    run = finished.usage  # type: ignore[union-attr]
    assert used == run["input_tokens"] + run["output_tokens"]  # as the ledger says
