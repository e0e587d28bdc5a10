"""App.stream / astream: typed events of every kind, the same events through LangGraph's
own ``custom`` stream mode, and the support desk's events against its trace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from corral import (
    BudgetAlert,
    Failure,
    GuardTrip,
    ModelCall,
    ReviewRequested,
    RunEvent,
    RunFinished,
    RunStarted,
    StepDone,
    SubtaskCreated,
    SubtaskFinished,
    ToolCall,
    load_team,
)
from corral.observability import EVENTS, listened, quiet
from tests.conftest import SUPPORT_DESK, TICKET, one_step_team, run_unblocked

TEAM = """\
version: 1
name: mixed
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Question: {{fields: {{invoice_id: str}}}}
  Answer: {{fields: {{invoice_id: str, status: str}}}}
tools:
  invoice_status: {{import: "tools:invoice_status"}}
agents:
  - id: clerk
    role: Billing clerk
    tools: [invoice_status]
    budget: {{daily_tokens: 1000000, alert_threshold: 0.000001}}
flow:
  entry: clerk
  input: Question
  output: Answer
  edges: [{{from: clerk, to: END, schema: Answer{review}}}]
guards:
  retry: {{max_attempts: 3, initial_interval: 0.01, backoff_factor: 1, jitter: false}}
"""
TOOLS = '''\
from langchain_core.tools import tool


@tool
def invoice_status(invoice_id: str) -> str:
    """The payment status of an invoice."""
    return f"{invoice_id}: paid twice"
'''
STORM = "agents:\n  clerk:\n    - {error: rate_limit}\n"


def kinds(events: list[RunEvent]) -> list[str]:
    return [e.kind for e in events]


def mixed(write: Callable[..., Path], script: str = STORM, review: str = "") -> Any:
    write("tools.py", TOOLS)
    write("script.yaml", script)
    return load_team(write("team.yaml", TEAM.format(review=review)))


def test_a_run_streams_each_kind_of_event_in_order(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    with mixed(write).compile(db=tmp_path / "w.db") as app:
        events = list(app.stream({"invoice_id": "INV-7"}))
        result_errors = app.runs.get(events[0].run_id)
    assert isinstance(events[0], RunStarted)
    assert events[0].input == {"invoice_id": "INV-7"}
    assert isinstance(events[-1], RunFinished)
    assert events[-1].status == "completed"
    assert result_errors is not None
    assert result_errors.status == "completed"
    calls = [e for e in events if isinstance(e, ModelCall)]
    assert [(c.attempt, c.status) for c in calls[:2]] == [(1, "error"), (2, "ok")]
    assert "429" in (calls[0].error or "")
    failure = next(e for e in events if isinstance(e, Failure))
    assert (failure.attempt, failure.error, failure.then.split(" in ")[0]) == (
        1,
        "ScriptedProviderError",
        "retry",
    )
    tool = next(e for e in events if isinstance(e, ToolCall))
    assert (tool.tool, tool.arguments, tool.verdict) == (
        "invoice_status",
        {"invoice_id": "INV-7"},
        "ran",
    )
    assert tool.result == "INV-7: paid twice"
    alert = next(e for e in events if isinstance(e, BudgetAlert))
    assert (alert.agent, alert.layer) == ("clerk", "daily_tokens")
    step = next(e for e in events if isinstance(e, StepDone))
    assert (step.agent, step.inbound, step.decision) == ("clerk", {"invoice_id": "INV-7"}, "-> END")
    assert step.output == events[-1].output
    assert step.llm_calls == len([c for c in calls if c.status == "ok"])
    for event in events:  # each is exactly its documented shape, and JSON as it is
        assert EVENTS.validate_python(event.model_dump()) == event
        assert json.loads(event.model_dump_json())["kind"] == event.kind


def test_a_review_pauses_the_stream_and_a_resumed_stream_finishes(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    team = mixed(write, "replies: []\n", review=", review: true")
    with team.compile(db=tmp_path / "w.db") as app:
        paused = list(app.stream({"invoice_id": "INV-9"}))
        run_id = paused[0].run_id
        resumed = list(app.stream(run_id=run_id, approve=True))
    review = next(e for e in paused if isinstance(e, ReviewRequested))
    assert review.review["payload"]["invoice_id"] == "INV-9"
    assert paused[-1].kind == "run_finished"
    assert paused[-1].status == "paused"  # type: ignore[union-attr]
    assert isinstance(resumed[0], RunStarted)
    assert resumed[0].resumed
    assert resumed[-1].status == "completed"  # type: ignore[union-attr]


def test_guard_trips_and_subtasks_stream_from_inside_delegation_rounds(tmp_path: Path) -> None:
    team = load_team(Path(__file__).parents[2] / "examples" / "runaway" / "team.yaml")
    with team.compile(db=tmp_path / "w.db") as app:
        events = list(app.stream({"goal": "write one email"}))
    created = [e for e in events if isinstance(e, SubtaskCreated)]
    trips = [e for e in events if isinstance(e, GuardTrip)]
    assert {1, 2} <= {e.depth for e in created}  # depth 2 is created inside a round
    assert "task_rate" in {t.guard for t in trips}
    assert any(t.policy == "halt" for t in trips)
    assert events[-1].status == "halted"  # type: ignore[union-attr]


def test_langgraphs_custom_stream_mode_yields_the_same_events(tmp_path: Path) -> None:
    team = load_team(SUPPORT_DESK)
    ticket = json.loads(TICKET.read_text())
    with team.compile(db=tmp_path / "w.db") as app:
        ours = [e for e in app.stream(ticket, run_id="ours") if e.kind not in ("run_started",)]
        first = app.book.first_state(app.plan.schemas["Ticket"].model_validate(ticket).model_dump())
        app.runs.start("theirs", "support_desk", None, ticket)
        theirs = list(app.graph.stream(first, app.config("theirs"), stream_mode="custom"))
    same = [e.kind for e in ours if e.kind != "run_finished"]
    assert [t["kind"] for t in theirs] == same
    assert [t.get("agent") for t in theirs] == [e.agent for e in ours if e.kind != "run_finished"]


def test_the_support_desk_stream_matches_its_trace(tmp_path: Path) -> None:
    team = load_team(SUPPORT_DESK)
    ticket = json.loads(TICKET.read_text())
    with team.compile(db=tmp_path / "w.db") as app:

        async def collect() -> list[RunEvent]:
            return [e async for e in app.astream(ticket)]

        events = run_unblocked(collect())
        trace = app.trace(events[0].run_id)
    steps = [e for e in events if isinstance(e, StepDone)]
    assert [s.agent for s in steps] == [t.agent for t in trace.of("step")]
    assert [s.output for s in steps] == [t.detail["output"] for t in trace.of("step")]
    calls = [e for e in events if isinstance(e, ModelCall)]
    assert len(calls) == len(trace.of("llm_call"))
    assert [c.agent for c in calls] == [t.agent for t in trace.of("llm_call")]
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.usage["llm_calls"] == len(calls)
    assert kinds(events).count("run_started") == 1


ORG = """\
version: 1
name: org
models:
  default: {use: scripted, script: script.yaml}
schemas:
  Ask: {fields: {question: str}}
  Note: {fields: {text: str}}
agents:
  - {id: lead, role: Lead, output: Note}
  - {id: clerk, role: Clerk, reports_to: lead, input: Ask, output: Note}
  - {id: dev, role: Developer, reports_to: lead, input: Ask, output: Note}
flow:
  entry: lead
  input: Ask
  output: Note
  edges: [{from: lead, to: END, schema: Note}]
"""
DELEGATE = """\
agents:
  lead:
    - delegate:
        - {assignee: clerk, instruction: check the bill, payload: {question: bill}}
        - {assignee: dev, instruction: check the logs, payload: {question: logs}}
"""


def test_subtasks_stream_when_created_and_when_finished(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("script.yaml", DELEGATE)
    team = load_team(write("org.yaml", ORG))
    with team.compile(db=tmp_path / "w.db") as app:
        events = list(app.stream({"question": "why?"}))
        tasks = app.board.tasks(run_id=events[0].run_id)
    created = [e for e in events if isinstance(e, SubtaskCreated)]
    finished = [e for e in events if isinstance(e, SubtaskFinished)]
    assert [(e.assignee, e.payload) for e in created] == [
        ("clerk", {"question": "bill"}),
        ("dev", {"question": "logs"}),
    ]
    assert sorted(e.task_id for e in finished) == sorted(t.id for t in tasks)
    assert {(e.status, e.agent) for e in finished} == {("done", "clerk"), ("done", "dev")}
    assert all(e.result == t.result for e in finished for t in tasks if t.id == e.task_id)
    steps = [e.agent for e in events if isinstance(e, StepDone)]
    assert steps == ["lead"]  # subtasks are not flow steps
    assert events[-1].status == "completed"  # type: ignore[union-attr]


def test_a_pause_is_streamed_once_in_langgraphs_custom_mode(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    from langgraph.types import Command

    team = mixed(write, "replies: []\n", review=", review: true")
    with team.compile(db=tmp_path / "w.db") as app:
        config = app.config("direct")
        paused = list(app.graph.stream({"invoice_id": "INV-5"}, config, stream_mode="custom"))
        resumed = list(
            app.graph.stream(Command(resume={"action": "approve"}), config, stream_mode="custom")
        )
        record = app.runs.get("direct")
    kinds_paused = [e["kind"] for e in paused]
    assert kinds_paused.count("review_pending") == 1
    assert paused[-1]["review"]["payload"]["invoice_id"] == "INV-5"
    assert "review_pending" not in [e["kind"] for e in resumed]
    assert record is not None
    assert record.status == "completed"


class Count(BaseModel):
    n: int


def test_a_run_makes_its_events_only_when_someone_listens(tmp_path: Path) -> None:
    """``App.run`` with no one asking for events drives its graph ``quiet``: its nodes
    make no events (a step's event is a dict of 14 fields). ``App.stream`` and
    LangGraph's ``custom`` stream mode still get every one."""
    heard: list[bool] = []

    def count(payload: Count) -> dict[str, Any]:
        heard.append(listened())  # what corral's node asks before it makes the step's event
        return {"n": payload.n + 1}

    team = one_step_team("counting", Count, count)
    with team.compile(db=tmp_path / "w.db") as app:
        assert app.run({"n": 1}).output == {"n": 2}
        assert heard == [False]
        streamed = list(app.stream({"n": 1}))
        assert heard == [False, True]
        first = app.book.first_state({"n": 1})
        app.runs.start("theirs", "counting", None, {"n": 1})
        theirs = list(app.graph.stream(first, app.config("theirs"), stream_mode="custom"))
        assert heard == [False, True, True]
    assert [e.kind for e in streamed] == ["run_started", "step", "run_finished"]
    assert [t["kind"] for t in theirs] == ["step"]
    assert listened()  # outside any run: nothing says no one listens
    with quiet():
        assert not listened()
    assert listened()


def _theirs(app: Any, run_id: str) -> list[Any]:
    """The step events of a run of ``app``'s graph in LangGraph's own ``custom`` mode."""
    app.runs.start(run_id, "counting", None, {"n": 1})
    first = app.book.first_state({"n": 1})
    return [e["kind"] for e in app.graph.stream(first, app.config(run_id), stream_mode="custom")]


def test_a_streams_caller_keeps_its_own_context_between_events_and_after(tmp_path: Path) -> None:
    """The caller's code between two events, and after it leaves a stream early, is not
    inside the run: a graph it streams itself gets its own events."""

    def count(payload: Count) -> dict[str, Any]:
        return {"n": payload.n + 1}

    with one_step_team("counting", Count, count).compile(db=tmp_path / "w.db") as app:
        between = [_theirs(app, f"between-{e.kind}") for e in app.stream({"n": 1})]
        assert between == [["step"], ["step"], ["step"]]
        for _ in app.stream({"n": 1}):
            break  # left early
        assert _theirs(app, "after-sync") == ["step"]

        async def leave() -> list[str]:
            async for _ in app.astream({"n": 1}):
                break
            await asyncio.sleep(0.2)  # the abandoned stream is closed by the loop
            later = [e.kind async for e in app.astream({"n": 1})]
            return [*_theirs(app, "after-async"), *later]

        assert asyncio.run(leave()) == ["step", "run_started", "step", "run_finished"]


def test_a_stream_closed_before_its_run_ended_is_recorded_cancelled_and_resumes(
    tmp_path: Path,
) -> None:
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        events = app.stream(json.loads(TICKET.read_text()), run_id="s1")
        kinds = [type(next(events)).__name__ for _ in range(3)]  # started, then two steps in
        events.close()  # the consumer stops reading
        record = app.runs.get("s1")
        assert record is not None
        assert (record.status, record.errors[0]["message"]) == (
            "cancelled",
            "cancelled: its event stream was closed before it ended; resume it to go on",
        )
        assert app.resume("s1").status == "completed"
    assert kinds[0] == "RunStarted"


def test_an_astream_left_mid_run_holds_no_reservation_and_its_resume_calls_no_model_again(
    tmp_path: Path,
) -> None:
    ticket = json.loads(TICKET.read_text())

    async def leave(app: Any) -> str:
        async for event in app.astream(ticket, run_id="left"):
            if isinstance(event, ModelCall):
                break  # just after a model call settled, inside its step
        await asyncio.sleep(0.2)  # the abandoned stream is closed by the loop
        return str(app.runs.get("left").status)

    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        assert asyncio.run(leave(app)) == "cancelled"
        left = [c["status"] for c in app.workspace.ledger.calls("left")]
        assert left == ["settled"]  # nothing reserved and never settled or released
        assert app.resume("left").status == "completed"
        whole = app.run(ticket, run_id="whole")
        assert whole.status == "completed"
        calls = [c["status"] for c in app.workspace.ledger.calls("left")]
        assert calls == [c["status"] for c in app.workspace.ledger.calls("whole")]


def test_an_astream_closed_before_its_run_ended_is_recorded_cancelled_when_aclose_returns(
    tmp_path: Path,
) -> None:
    """Before: closing the outer stream left ``adrive`` to the loop's finalizer, so just
    after ``await aclose()`` the run was still 'running' and a resume was refused."""

    async def leave(app: Any) -> str:
        events = app.astream(json.loads(TICKET.read_text()), run_id="a1")
        async for event in events:
            if event.kind == "step":
                break
        await events.aclose()
        return str(app.runs.get("a1").status)  # no sleep: aclose has recorded it

    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        assert asyncio.run(leave(app)) == "cancelled"
        assert app.resume("a1").status == "completed"
