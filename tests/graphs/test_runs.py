"""Runs of compiled teams: typed handoffs, retries with feedback, failures, resume."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from corral import App, InputError, Team, load_team
from tests.conftest import MINI, SUPPORT_DESK, TICKET, SeenMessages, run_unblocked

INVALID = "INVALID-PAYLOAD-MARKER"


def one_step(name: str, schema: type[BaseModel], agent: str, function: Callable[..., Any]) -> Team:
    """A team of one function agent from ``schema`` to ``schema``."""
    from corral import AgentSpec, EdgeSpec, FlowSpec, SchemaSpec

    title = schema.__name__
    return Team(
        name=name,
        schemas={title: SchemaSpec(model=schema)},
        agents=[AgentSpec(id=agent, kind="function", function=function)],
        flow=FlowSpec(
            entry=agent,
            input=title,
            output=title,
            edges=[EdgeSpec(from_=agent, to="END", schema_name=title)],
        ),
    )


def mini(write: Callable[..., Path], script: str | None = None) -> Team:
    model = "scripted"
    if script is not None:
        write("script.yaml", script)
        model = "flaky"
    text = MINI.format(model=model)
    if script is not None:
        text = text.replace(
            "schemas:", "models:\n  flaky: {use: scripted, script: script.yaml}\nschemas:", 1
        )
    return load_team(write("mini.yaml", text))


def test_support_desk_routes_by_payload_and_returns_a_valid_reply(tmp_path: Path) -> None:
    team = load_team(SUPPORT_DESK)
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run(json.loads(TICKET.read_text()))
        assert result.status == "completed"
        assert result.path == ["intake", "triage", "billing", "refund_policy", "qa", "writer"]
        team.resolved.schemas["Reply"].model_validate(result.output)
        assert result.usage["llm_calls"] == 4
        assert result.usage["input_tokens"] > 0
        state = app.graph.get_state(app.config(result.run_id))  # LangGraph's own API
        assert state.values["_output"] == result.output
        assert state.next == ()


def test_technical_tickets_take_the_technical_path(tmp_path: Path) -> None:
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        result = app.run(
            {
                "customer": "Bo",
                "subject": "App crashes",
                "body": "A technical fault: the app crashes on start.",
            }
        )
    assert result.path == ["intake", "triage", "technical", "qa", "writer"]


def test_invalid_output_is_retried_with_feedback(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    team = mini(
        write,
        f"""
        agents:
          solver:
            - raw: "{INVALID} not json"
            - output: {{text: "{INVALID}", score: 99}}
        """,
    )
    seen = SeenMessages()
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "what is 2+2?"}, config={"callbacks": [seen]})
    assert result.status == "completed"
    assert result.usage["llm_calls"] == 3
    assert len(seen.calls) == 3
    second, third = (str(m[-1].content) for m in seen.calls[1:])
    assert "not a valid Answer" in second
    assert f"{INVALID} not json" in second
    assert "score: Input should be less than or equal to 10" in third
    assert "system" in {m.type for m in seen.calls[0]}


def test_retries_exhausted_fail_clearly_and_nothing_invalid_is_checkpointed(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    team = mini(
        write,
        f"""
        agents:
          solver:
            - output: {{text: "{INVALID}", score: 99}}
            - output: {{text: "{INVALID}", score: -1}}
            - raw: "{INVALID}"
        """,
    )
    db = tmp_path / "w.db"
    with team.compile(db=db) as app:
        result = app.run({"text": "q"}, run_id="bad-run")
        history = list(app.graph.get_state_history(app.config("bad-run")))
    assert result.status == "failed"
    error = result.errors[0].to_dict()
    assert error["type"] == "HandoffError"
    assert error["agent"] == "solver"
    assert error["schema"] == "Answer"
    assert error["attempts"] == 3
    assert "no Answer in the answer" in error["errors"][0]
    assert history  # the input checkpoint exists, and only valid payloads are in it
    for snapshot in history:
        assert snapshot.values.get("_output") is None
        handoff = snapshot.values.get("_handoff")
        if handoff is not None:
            team.resolved.schemas[handoff["schema"]].model_validate(handoff["payload"])
    with sqlite3.connect(db) as conn:
        for table, column in (
            ("cp_checkpoints", "checkpoint"),
            ("cp_blobs", "blob"),
            ("cp_writes", "blob"),
        ):
            blobs = [bytes(row[0] or b"") for row in conn.execute(f"SELECT {column} FROM {table}")]
            assert blobs, table
            assert not any(INVALID.encode() in blob for blob in blobs)


def test_failed_run_resumes_without_rerunning_completed_nodes(
    tmp_path: Path, write: Callable[..., Path]
) -> None:
    write("script.yaml", "agents:\n  qa:\n    - error: bad_request\n")
    text = SUPPORT_DESK.read_text().replace(
        "  default: scripted", "  default: {use: scripted, script: script.yaml}"
    )
    (tmp_path / "rules.py").write_text((SUPPORT_DESK.parent / "rules.py").read_text())
    team = load_team(write("team.yaml", text))
    seen = SeenMessages()
    with team.compile(db=tmp_path / "w.db") as app:
        failed = app.run(json.loads(TICKET.read_text()), run_id="t-1")
        assert failed.status == "failed"
        assert failed.errors[0].to_dict()["type"] == "NodeError"
        assert failed.errors[0].agent == "qa"
        assert "HTTP 400" in failed.errors[0].message
        assert "not retryable" in failed.errors[0].message
        assert failed.path == ["intake", "triage", "billing", "refund_policy"]
        resumed = app.resume("t-1", config={"callbacks": [seen]})
    assert resumed.status == "completed"
    assert resumed.path == ["intake", "triage", "billing", "refund_policy", "qa", "writer"]
    assert len(seen.calls) == 2  # only qa and writer called the model again


def test_function_node_errors_are_recorded(tmp_path: Path, write: Callable[..., Path]) -> None:
    write(
        "rules.py",
        "def boom(x):\n    raise ValueError('bad rule')\n"
        "def wrong(x):\n    return {'value': 'not a number'}\n",
    )
    base = """\
        version: 1
        name: fn
        schemas:
          Number: {fields: {value: int}}
        agents:
          - {id: step, kind: function, function: "rules:FUNC"}
        flow:
          entry: step
          input: Number
          output: Number
          edges: [{from: step, to: END, schema: Number}]
        """
    for func, kind, words in (
        ("boom", "NodeError", "raised ValueError: bad rule"),
        ("wrong", "HandoffError", "value: Input should be a valid integer"),
    ):
        team = load_team(write(f"{func}.yaml", base.replace("FUNC", func)))
        with team.compile(db=tmp_path / f"{func}.db") as app:
            result = app.run({"value": 1})
        assert result.status == "failed"
        assert result.errors[0].to_dict()["type"] == kind
        assert words in json.dumps(result.errors[0].to_dict())


def test_concurrent_async_runs_are_safe(tmp_path: Path) -> None:
    team = load_team(SUPPORT_DESK)
    ticket = json.loads(TICKET.read_text())

    async def many(app: App) -> list[Any]:
        return await asyncio.gather(*(app.arun({**ticket, "customer": f"c{i}"}) for i in range(24)))

    with team.compile(db=tmp_path / "w.db") as app:
        results = run_unblocked(many(app))
        assert {r.status for r in results} == {"completed"}
        assert len({r.run_id for r in results}) == 24
        for r in results:
            assert app.graph.get_state(app.config(r.run_id)).values["_output"] == r.output
        assert len(app.list_runs()) == 24


def test_bad_inputs_and_run_ids_are_user_errors(write: Callable[..., Path], tmp_path: Path) -> None:
    with mini(write).compile(db=tmp_path / "w.db") as app:
        with pytest.raises(InputError, match="text: String should have at least 1") as caught:
            app.run({"text": ""})
        assert caught.value.field == "text"
        with pytest.raises(InputError, match=r"run id .* is not allowed"):
            app.run({"text": "q"}, run_id="') OR 1=1--")
        app.run({"text": "q"}, run_id="once")
        with pytest.raises(InputError, match=r"already exists \(completed\); resume it"):
            app.run({"text": "q"}, run_id="once")
        app.runs.start("busy", app.plan.name, None, {"text": "q"})  # as another run's start
        with pytest.raises(InputError, match=r"\(running\); wait for it to end or choose"):
            app.run({"text": "q"}, run_id="busy")
        with pytest.raises(InputError, match="no run 'never'"):
            app.resume("never")
        assert app.resume("once").status == "completed"  # resuming a finished run is a no-op


def test_config_cannot_move_a_run_to_another_thread(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    moved: Any = {"configurable": {"thread_id": "elsewhere"}, "tags": ["t"]}
    with mini(write).compile(db=tmp_path / "w.db") as app:
        with pytest.raises(InputError, match="'thread_id' is the run's own") as caught:
            app.run({"text": "q"}, run_id="r1", config=moved)
        assert caught.value.field == "config"
        with pytest.raises(InputError, match="'thread_id' is the run's own"):
            asyncio.run(app.arun({"text": "q"}, run_id="r1", config=moved))
        with pytest.raises(InputError, match="'thread_id' is the run's own"):
            next(app.stream({"text": "q"}, run_id="r1", config=moved))
        assert app.runs.get("r1") is None  # refused before it was registered
        app.run({"text": "q"}, run_id="r1", config={"tags": ["t"]})
        fork: Any = {"configurable": {"checkpoint_id": "x"}}
        with pytest.raises(InputError, match="'checkpoint_id' is the run's own"):
            app.resume("r1", config=fork)
        with pytest.raises(InputError, match="'checkpoint_id' is the run's own"):
            asyncio.run(app.aresume("r1", config=fork))
    with sqlite3.connect(tmp_path / "w.db") as conn:
        threads = conn.execute("SELECT DISTINCT thread_id FROM cp_checkpoints").fetchall()
    assert threads == [("r1",)]  # its checkpoints went nowhere else


def test_a_malformed_config_or_run_id_is_refused_before_the_run_is_registered(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    # Before: config={"tags": "x"} raised a raw AttributeError from merge_configs after the
    # run was registered, which then stayed 'running' and could not be resumed.
    bad: list[Any] = [
        5,
        {"tags": "x"},
        {"callbacks": 5},
        {"metadata": []},
        {"recursion_limit": "9"},
    ]
    with mini(write).compile(db=tmp_path / "w.db") as app:
        for config in bad:
            with pytest.raises(InputError, match="config") as caught:
                app.run({"text": "q"}, run_id="r1", config=config)
            assert str(caught.value.field).startswith("config")
            with pytest.raises(InputError, match="config"):
                next(app.stream({"text": "q"}, run_id="r1", config=config))
        assert app.runs.get("r1") is None
        with pytest.raises(InputError, match="run id must be a string, not int") as caught:
            app.run({"text": "q"}, run_id=5)  # type: ignore[arg-type]
        assert caught.value.field == "run_id"
        assert app.run({"text": "q"}, run_id="r1", config={"tags": ["t"]}).status == "completed"


def test_unwritable_workspace_is_a_user_error(write: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        mini(write).compile(db=tmp_path / "dir.db")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot create the workspace database"):
        mini(write).compile(db=tmp_path / "file" / "w.db")


def test_looping_flow_is_halted_by_max_steps(write: Callable[..., Path], tmp_path: Path) -> None:
    team = load_team(
        write(
            "loop.yaml",
            """\
        version: 1
        name: loop
        schemas:
          Note: {fields: {again: bool, text: str}}
        agents: [{id: ping}, {id: pong}]
        flow:
          entry: ping
          input: Note
          output: Note
          edges:
            - {from: ping, to: pong, schema: Note}
            - {from: pong, to: ping, schema: Note, when: {field: again, equals: true}}
            - {from: pong, to: END, schema: Note, when: {field: again, equals: false}}
        guards: {max_steps: 6}
        """,
        )
    )
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"again": True, "text": "x"}, run_id="loop")
        again = app.resume("loop")  # the steps it took count: it is halted again at once
        streamed = [e.kind for e in app.stream({"again": True, "text": "x"})]
    assert result.status == "halted"
    assert [(g["guard"], g["limit"], g["policy"]) for g in result.guards_tripped] == [
        ("max_steps", 6, "halt")
    ]
    assert "max_steps=6" in result.errors[0].message
    assert (again.status, len(again.path)) == ("halted", 6)
    assert again.errors[0].to_dict()["guard"] == "max_steps"
    raised = write("loop.yaml", Path(tmp_path / "loop.yaml").read_text().replace("6}", "9}"))
    with load_team(raised).compile(db=tmp_path / "w.db") as app:
        more = app.resume("loop")  # three more steps, then halted again
    assert (more.status, len(more.path)) == ("halted", 9)
    assert streamed[-2:] == ["guard_trip", "run_finished"]  # the trip is streamed too


def test_an_on_step_callback_that_raises_is_named_and_the_run_resumes(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    def broken(event: Any) -> None:
        raise KeyError("no such column")

    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        ticket = json.loads(TICKET.read_text())
        failed = app.run(ticket, run_id="cb", on_step=broken)
        assert (failed.status, failed.path) == ("failed", ["intake"])
        assert failed.errors[0].message == (
            "the on_step callback raised KeyError: 'no such column' (after step intake); "
            "the run stopped there: fix the callback and resume it"
        )  # it said only "'no such column'"
        resumed = app.resume("cb")
        assert (resumed.status, resumed.path[:2]) == ("completed", ["intake", "triage"])


def test_an_app_shows_its_team_and_workspace(write: Callable[..., Path], tmp_path: Path) -> None:
    with mini(write).compile(db=tmp_path / "w.db") as app:
        assert repr(app) == f"App(team='mini', agents=1, workspace='{tmp_path / 'w.db'}')"


def test_an_input_valid_but_not_storable_as_json_is_an_input_error(tmp_path: Path) -> None:
    """Before: bytes that are not UTF-8, an object, or nesting too deep passed validation
    and then raised raw (UnicodeDecodeError, PydanticSerializationError, ValueError) from
    the payload's JSON dump."""

    class Blob(BaseModel):
        text: str
        extra: Any = None

    def echo(blob: Blob) -> Blob:
        return blob

    team = one_step("blob", Blob, "echo", echo)
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(500):
        inner["a"] = inner = {}
    with team.compile(db=tmp_path / "w.db") as app:
        for extra in (b"\xff", object(), deep):
            with pytest.raises(InputError, match="cannot be stored as JSON"):
                app.run({"text": "x", "extra": extra}, run_id="r1")
        assert app.runs.get("r1") is None
        assert app.run({"text": "x", "extra": b"ok"}).output == {"text": "x", "extra": "ok"}


def test_a_whole_number_beyond_64_bits_is_refused_where_it_is_made(tmp_path: Path) -> None:
    """Before: 2**70 passed validation, in the input or in an agent's answer, and the run
    failed at its checkpoint with a bare RunError('Integer exceeds 64-bit range') naming
    neither the field nor the agent."""
    from corral import HandoffError

    class Count(BaseModel):
        n: int
        seen: list[dict[str, int]] = []

    def grow(count: Count) -> Count:
        return Count(n=count.n * 2**40, seen=[{"n": count.n * 2**40}])

    team = one_step("count", Count, "grow", grow)
    with team.compile(db=tmp_path / "w.db") as app:
        with pytest.raises(
            InputError, match=r"seen\.0\.n: -1180591620717411303424 is too large"
        ) as caught:
            app.run({"n": 1, "seen": [{"n": -(2**70)}]}, run_id="r1")
        assert caught.value.field == "seen.0.n"
        assert app.runs.get("r1") is None
        failed = app.run({"n": 2**30})
        assert failed.status == "failed"
        assert isinstance(failed.errors[0], HandoffError)
        assert failed.errors[0].agent == "grow"
        assert "n: 1180591620717411303424 is too large to be checkpointed" in str(failed.errors[0])
        assert app.run({"n": 2**23}).output == {"n": 2**63, "seen": [{"n": 2**63}]}


def test_a_second_app_on_the_workspace_cannot_resume_a_run_the_first_is_driving(
    tmp_path: Path,
) -> None:
    """Before: both Apps were this process to the lease, so ``app2.resume`` took the run
    over and drove it again alongside ``app1``: every step ran twice."""
    import threading
    import time

    from corral import AgentSpec, EdgeSpec, FlowSpec, SchemaSpec

    class Number(BaseModel):
        value: int

    ran: list[int] = []

    def step(number: Number) -> Number:
        ran.append(number.value)
        time.sleep(0.3)
        return Number(value=number.value + 1)

    agents = [AgentSpec(id=f"s{i}", kind="function", function=step) for i in range(3)]
    edges = [EdgeSpec(from_="s0", to="s1", schema_name="Number")]
    edges += [EdgeSpec(from_="s1", to="s2", schema_name="Number")]
    edges += [EdgeSpec(from_="s2", to="END", schema_name="Number")]
    team = Team(
        name="chain",
        schemas={"Number": SchemaSpec(model=Number)},
        agents=agents,
        flow=FlowSpec(entry="s0", input="Number", output="Number", edges=edges),
    )
    with team.compile(db=tmp_path / "w.db") as app1, team.compile(db=tmp_path / "w.db") as app2:
        first = threading.Thread(target=app1.run, args=({"value": 0},), kwargs={"run_id": "r"})
        first.start()
        time.sleep(0.4)
        with pytest.raises(InputError, match="is running in process"):
            app2.resume("r")
        first.join()
        assert ran == [0, 1, 2]
        assert app2.resume("r").output == {"value": 3}  # ended: resuming it is a no-op


def test_the_trace_of_another_teams_run_is_refused_not_silently_partial(tmp_path: Path) -> None:
    """Before: ``alpha.trace(beta_run)`` read the run through alpha's shape and returned
    only its input, none of its steps, without a word."""
    from corral import AgentSpec, EdgeSpec, FlowSpec, SchemaSpec

    class Number(BaseModel):
        value: int

    def double(number: Number) -> Number:
        return Number(value=number.value * 2)

    def team(name: str, agent: str) -> Team:
        return Team(
            name=name,
            schemas={"Number": SchemaSpec(model=Number)},
            agents=[AgentSpec(id=agent, kind="function", function=double)],
            flow=FlowSpec(
                entry=agent,
                input="Number",
                output="Number",
                edges=[EdgeSpec(from_=agent, to="END", schema_name="Number")],
            ),
        )

    db = tmp_path / "w.db"
    with team("alpha", "a").compile(db=db) as alpha, team("beta", "b").compile(db=db) as beta:
        beta.run({"value": 1}, run_id="rb")
        assert [e.agent for e in beta.trace("rb") if e.kind == "step"] == ["b"]
        with pytest.raises(InputError, match="belongs to team 'beta', not 'alpha'"):
            alpha.trace("rb")


def test_an_async_or_uncallable_on_step_is_refused_before_the_run_starts(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: an ``async def`` on_step was called and its coroutine dropped (a
    RuntimeWarning at most): ``arun(..., on_step=async_cb)`` completed and the callback
    never ran once. ``on_step=5`` failed the run only after its first step."""

    async def live(event: Any) -> None:
        raise AssertionError("never awaited")

    class Live:
        async def __call__(self, event: Any) -> None:
            raise AssertionError("never awaited")

    with mini(write).compile(db=tmp_path / "w.db") as app:
        for bad in (live, Live(), 5):
            with pytest.raises(InputError, match="on_step must be a plain function") as caught:
                asyncio.run(app.arun({"text": "q"}, run_id="r1", on_step=bad))
            assert caught.value.field == "on_step"
            with pytest.raises(InputError, match="on_step must be a plain function"):
                app.run({"text": "q"}, run_id="r1", on_step=bad)
        assert app.runs.get("r1") is None


def test_a_recursion_limit_in_config_is_refused_for_guards_max_steps(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: config={"recursion_limit": 2} halted a short run with "guard max_steps
    tripped (limit 100, seen 101): the run took more than guards.max_steps=100 steps"."""
    with mini(write).compile(db=tmp_path / "w.db") as app:
        with pytest.raises(InputError, match=r"set guards\.max_steps instead") as caught:
            app.run({"text": "q"}, run_id="r1", config={"recursion_limit": 2})
        assert caught.value.field == "config.recursion_limit"
        assert app.runs.get("r1") is None


def test_list_runs_refuses_a_limit_that_is_not_a_whole_number_of_0_or_more(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: limit=None raised sqlite3.IntegrityError 'datatype mismatch', and -1 or
    '5' listed every run (SQLite reads a negative LIMIT as none)."""
    with mini(write).compile(db=tmp_path / "w.db") as app:
        app.run({"text": "q"})
        for limit in (None, -1, "5", 2.0):
            with pytest.raises(InputError, match="limit must be a whole number") as caught:
                app.list_runs(limit=limit)  # type: ignore[arg-type]
            assert caught.value.field == "limit"
        assert len(app.list_runs(limit=0)) == 0
        assert len(app.list_runs(limit=1)) == 1


def test_a_closed_app_refuses_to_run_and_registers_nothing(tmp_path: Path) -> None:
    """Before: the workspace's pool opened new connections after ``close``, so a closed
    App went on running and recording runs."""
    ticket = json.loads(TICKET.read_text())
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        done = app.run(ticket)
        app.close()
        with pytest.raises(InputError, match=r"was closed .*compile the team again"):
            app.run(ticket, run_id="after")
        with pytest.raises(InputError, match="was closed"):
            app.trace(done.run_id)
        with pytest.raises(InputError, match="was closed"):  # it held the store itself
            app.context.write_global("r", None, "policy", "refunds up to 50 USD")
    # the with-block's own close, after the explicit one, raised nothing
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as again:
        assert again.runs.get("after") is None
        assert again.trace(done.run_id)


def test_a_process_exiting_mid_run_records_it_cancelled_under_run_and_arun(
    tmp_path: Path,
) -> None:
    """Before: SystemExit from inside a run (a function calling ``sys.exit``, a signal
    handler) was recorded ``failed`` with the bare message '3' under ``run``, and
    ``cancelled`` under ``arun``. It still ends the process (it is not swallowed); the run
    is recorded cancelled either way, and resumes."""
    import sys

    class N(BaseModel):
        n: int

    exits = [True]

    def step(given: N) -> N:
        if exits[0]:
            sys.exit(3)
        return N(n=given.n + 1)

    team = one_step("exits", N, "step", step)
    with team.compile(db=tmp_path / "w.db") as app:
        with pytest.raises(SystemExit):
            app.run({"n": 1}, run_id="sync")
        with pytest.raises(SystemExit):
            asyncio.run(app.arun({"n": 1}, run_id="async"))
        for run_id in ("sync", "async"):
            record = app.runs.get(run_id)
            assert record is not None
            assert record.status == "cancelled", run_id
            assert "resume it to go on" in record.errors[0]["message"], run_id
        exits[0] = False
        assert app.resume("sync").output == {"n": 2}
        assert app.resume("async").output == {"n": 2}


async def _async_hook(alert: Any) -> None:
    """An async budget hook: refused, as it would never be awaited."""


@pytest.mark.parametrize(
    ("argument", "value", "said"),
    [
        ("db", b"w.db", "db must be a file path or a postgresql:// URL (or None), not bytes"),
        ("db", 5, "db must be a file path or a postgresql:// URL (or None), not int 5"),
        ("chat_models", ["default"], "chat_models must be a mapping of model name to chat"),
        ("on_budget_alert", "print", "on_budget_alert must be a plain function taking one"),
        ("on_budget_alert", _async_hook, "(an async one would never be awaited)"),
        ("clock", None, "clock must be a function returning the time in seconds since the"),
        ("metrics", {}, "metrics must be a corral Metrics (or None), not dict {}"),
        ("tracer_provider", 1, "tracer_provider must be an OpenTelemetry TracerProvider"),
    ],
)
def test_an_app_argument_of_the_wrong_type_is_refused_before_the_workspace_opens(
    tmp_path: Path, argument: str, value: Any, said: str
) -> None:
    """Before: a raw ValueError or TypeError (``chat_models=[...]``, ``db=b"..."``), an
    AttributeError later (``metrics={}``), or accepted and failing at the first run
    (``clock=5``, ``on_budget_alert="print"``)."""
    with pytest.raises(InputError, match=re.escape(said)) as caught:
        load_team(SUPPORT_DESK).compile(**{"db": tmp_path / "w.db", argument: value})
    assert caught.value.field == argument
    assert list(tmp_path.iterdir()) == []  # no workspace was made


def test_an_async_function_agent_runs_in_a_sync_run_called_inside_a_running_loop(
    tmp_path: Path,
) -> None:
    """Before: ``app.run`` from a notebook cell (or any coroutine) failed the run with
    'asyncio.run() cannot be called from a running event loop'."""

    class N(BaseModel):
        n: int

    async def step(given: N) -> N:
        await asyncio.sleep(0)
        return N(n=given.n + 1)

    async def in_a_loop(app: App) -> list[Any]:
        return [app.run({"n": 1}), await app.arun({"n": 2})]

    with one_step("in_loop", N, "step", step).compile(db=tmp_path / "w.db") as app:
        assert app.run({"n": 0}).output == {"n": 1}
        assert [r.output for r in asyncio.run(in_a_loop(app))] == [{"n": 2}, {"n": 3}]
