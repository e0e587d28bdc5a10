"""Behaviour of every storage protocol, written once and run against every backend
(through the ``workspace`` fixture): runs, ledger, events, audit, tool calls, breakers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from corral import BudgetExceeded, BudgetLimits, InputError, Workspace
from tests.workspace.conftest import Clock


def test_runs_are_registered_updated_listed_and_deleted(workspace: Workspace, clock: Clock) -> None:
    runs = workspace.runs
    runs.start("r1", "team", None, {"text": "hi"})
    clock.now += 10
    runs.start("r2", "team", "team.yaml", {"text": "again"})
    runs.update("r1", "completed", output={"ok": True}, usage={"llm_calls": 1}, path=["a"])
    first = runs.get("r1")
    assert first is not None
    assert (first.status, first.output, first.path, first.input) == (
        "completed",
        {"ok": True},
        ["a"],
        {"text": "hi"},
    )
    assert first.started_at.startswith("1970-01-12T13:46:40")  # the injected clock
    assert [r.run_id for r in runs.list()] == ["r2", "r1"]  # newest first
    assert [r.run_id for r in runs.list(status="completed")] == ["r1"]
    runs.delete("r1")
    assert runs.get("r1") is None


def test_ledger_reserves_settles_and_releases_against_every_layer(workspace: Workspace) -> None:
    ledger = workspace.ledger
    limits = BudgetLimits(daily_tokens=1000, task_calls=3)
    row = ledger.reserve(
        run_id="r", task_key="t", agent="a", model="scripted", tokens=600, cost=0.0, limits=limits
    )
    with pytest.raises(BudgetExceeded) as refused:
        ledger.reserve(
            run_id="r",
            task_key="t",
            agent="a",
            model="scripted",
            tokens=500,
            cost=0.0,
            limits=limits,
        )
    assert (refused.value.layer, refused.value.used, refused.value.requested) == (
        "daily_tokens",
        600,
        500,
    )
    settled = ledger.settle(
        row,
        agent="a",
        model="scripted",
        input_tokens=100,
        output_tokens=50,
        cached_tokens=0,
        cost=0.0,
        latency_ms=1.0,
        limits=limits,
    )
    assert settled.alerts == []
    again = ledger.reserve(
        run_id="r", task_key="t", agent="a", model="scripted", tokens=500, cost=0.0, limits=limits
    )
    ledger.release(again)
    assert [(c["status"], c["input_tokens"]) for c in ledger.calls("r")] == [
        ("settled", 100),
        ("released", 0),
    ]
    report = {line["agent"]: line for line in ledger.report(ledger.day())}
    assert (report["a"]["tokens"], report["a"]["calls"]) == (150, 1)


def test_a_run_keeps_the_definition_it_is_pinned_to(workspace: Workspace) -> None:
    runs = workspace.runs
    runs.start("r1", "t", None, {}, fingerprint="f1", definition={"agents": ["a"]})
    runs.start("r2", "t", None, {}, definition={"agents": ["b"]})  # no fingerprint: its own
    runs.pin("r1", "f2", {"agents": ["a", "c"]})
    pinned = {r.run_id: (r.fingerprint, r.definition) for r in runs.list()}
    assert pinned == {"r1": ("f2", {"agents": ["a", "c"]}), "r2": (None, {"agents": ["b"]})}
    with pytest.raises(ValueError, match="no field 'input'"):
        runs.update("r1", "completed", input={"x": 1})
    record = runs.get("r1")
    assert record is not None
    assert (record.status, record.input) == ("running", {})  # nothing was written


def test_limits_are_replaced_and_each_alert_is_raised_once_a_day(workspace: Workspace) -> None:
    ledger = workspace.ledger
    ledger.publish_limits({"a": BudgetLimits(daily_tokens=100)})
    limits = BudgetLimits(daily_tokens=200)
    ledger.publish_limits({"a": limits}, team=BudgetLimits(team_daily_tokens=1000))
    raised = []
    for tokens in (170, 5):  # the first settlement crosses 80 % of 200, the second too
        row = ledger.reserve(
            run_id="r", task_key="t", agent="a", model="m", tokens=10, cost=0.0, limits=limits
        )
        settled = ledger.settle(
            row,
            agent="a",
            model="m",
            input_tokens=tokens,
            output_tokens=0,
            cached_tokens=0,
            cost=None,
            latency_ms=1.0,
            limits=limits,
        )
        raised.append([(alert.agent, alert.layer, alert.used) for alert in settled.alerts])
    assert raised == [[("a", "daily_tokens", 170)], []]
    report = {line["agent"]: line for line in ledger.report(ledger.day())}
    assert (report["a"]["tokens"], report["a"]["token_limit"], report["a"]["cost_usd"]) == (
        175,
        200,
        None,  # a call of unknown cost
    )
    assert report["team"]["token_limit"] == 1000
    with pytest.raises(KeyError, match="no reserved call 999"):
        ledger.settle(
            999,
            agent="a",
            model="m",
            input_tokens=1,
            output_tokens=0,
            cached_tokens=0,
            cost=0.0,
            latency_ms=1.0,
            limits=limits,
        )


def test_grants_are_carved_checked_and_given_back(workspace: Workspace) -> None:
    ledger = workspace.ledger
    free = BudgetLimits()
    row = ledger.reserve(
        run_id="r", task_key="p", agent="a", model="m", tokens=100, cost=0.0, limits=free
    )
    grants = ledger.grant(
        agent="a", parent="p", limit=1000, asks=[("c1", None, None), ("c2", None, 300)]
    )
    assert grants == {"c1": 600, "c2": 300}  # explicit tokens first, the rest shared
    assert ledger.grant(agent="a", parent="p", limit=1000, asks=[("c1", None, None)]) == {}
    with pytest.raises(BudgetExceeded) as refused:
        ledger.reserve(
            run_id="r", task_key="c2", agent="b", model="m", tokens=301, cost=0.0, limits=free
        )
    assert (refused.value.layer, refused.value.limit) == ("grant_tokens", 300)
    child = ledger.reserve(
        run_id="r", task_key="c2", agent="b", model="m", tokens=50, cost=0.0, limits=free
    )
    for each in (row, child):
        ledger.settle(
            each,
            agent="a",
            model="m",
            input_tokens=40,
            output_tokens=0,
            cached_tokens=0,
            cost=0.0,
            latency_ms=1.0,
            limits=free,
        )
    ledger.settle_grants("p", ["c1", "c2"])  # c1 spent nothing, c2 40 tokens
    with pytest.raises(BudgetExceeded) as left:  # p's task: its own 40 and c2's 40
        ledger.grant(agent="a", parent="p", limit=80, asks=[("c3", None, None)])
    assert (left.value.used, left.value.limit) == (80, 80)


def test_events_are_stamped_by_the_injected_clock(workspace: Workspace, clock: Clock) -> None:
    workspace.events.record("r", "guard_trip", "a", {"guard": "x"})
    clock.now += 1.5
    workspace.events.record("r", "failure", None, {"message": "m"})
    events = workspace.events.list("r")
    assert [(e["kind"], e["at"]) for e in events] == [
        ("guard_trip", "1970-01-12T13:46:40.000Z"),
        ("failure", "1970-01-12T13:46:41.500Z"),
    ]
    assert workspace.events.list("r", "failure")[0]["message"] == "m"


def test_audit_rows_and_tool_results_are_kept(workspace: Workspace) -> None:
    workspace.audit.record("r", "a", "call", scope="tool", target="t", verdict="denied", reason="x")
    assert workspace.audit.rows("r") == [
        {
            "run_id": "r",
            "agent": "a",
            "action": "call",
            "scope": "tool",
            "target": "t",
            "verdict": "denied",
            "reason": "x",
        }
    ]
    calls = workspace.tool_calls
    assert calls.recorded("k") is None
    calls.record("k", run_id="r", agent="a", tool="t", args={"x": 1}, result="first")
    calls.record("k", run_id="r", agent="a", tool="t", args={"x": 1}, result="second")
    assert calls.recorded("k") == "first"  # the first record wins


def test_a_started_call_is_in_doubt_until_it_finishes(workspace: Workspace) -> None:
    calls = workspace.tool_calls
    begin = {"run_id": "r", "agent": "a", "tool": "t", "args": {"x": 1}}
    calls.begin("k1", slot="s1", **begin)
    assert calls.recorded("k1") is None  # started is not finished
    doubt = calls.in_doubt("s1")
    assert doubt is not None
    assert (doubt.key, doubt.tool, doubt.args) == ("k1", "t", {"x": 1})
    assert calls.in_doubt("s2") is None
    assert [c["state"] for c in calls.calls("r")] == ["started"]
    calls.record("k1", result="done", **begin)
    assert calls.in_doubt("s1") is None
    assert calls.recorded("k1") == "done"
    calls.begin("k1", slot="s1", **begin)  # a finished call never goes back to started
    assert calls.in_doubt("s1") is None
    calls.begin("k2", slot="s2", **begin)
    calls.failed("k2", "RuntimeError: down")  # the tool raised: over, not in doubt
    assert calls.in_doubt("s2") is None
    assert calls.recorded("k2") is None  # and not answered from a record either
    calls.begin("k2", slot="s2", **begin)  # run again: started again
    assert calls.in_doubt("s2") is not None


@dataclass(frozen=True)
class Breaker:
    failures: int = 2
    window_seconds: float = 60.0
    cooldown_seconds: float = 30.0


def test_breaker_opens_waits_probes_and_closes(workspace: Workspace, clock: Clock) -> None:
    breakers, spec = workspace.breakers, Breaker()
    assert breakers.admit("a", spec) == "closed"
    assert not breakers.failed("a", spec)
    assert breakers.failed("a", spec)  # the second failure in the window opens it
    assert breakers.admit("a", spec) == "open"
    clock.now += 31
    assert breakers.admit("a", spec) == "probe"
    assert breakers.admit("a", spec) == "open"  # one probe at a time
    clock.now += 29
    assert breakers.admit("a", spec) == "open"  # the probe has its cooldown to tell
    clock.now += 2
    assert breakers.admit("a", spec) == "probe"  # it never told (a guard, a crash): again
    assert breakers.succeeded("a")
    assert breakers.admit("a", spec) == "closed"
    assert breakers.states() == {}


def test_a_team_budget_trip_says_whose_budget_it_is(workspace: Workspace) -> None:
    limits = BudgetLimits(daily_tokens=500, team_daily_tokens=100)
    with pytest.raises(BudgetExceeded) as tripped:
        workspace.ledger.reserve(
            run_id="r", task_key="t", agent="a", model="m", tokens=150, cost=0.0, limits=limits
        )
    assert tripped.value.layer == "team_daily_tokens"
    assert str(tripped.value).endswith(
        "0 of the team_daily_tokens budget of 100 is used, and this call of agent 'a' needs "
        "150 more"
    )  # it said "agent 'a' has used 0 of its team_daily_tokens budget"


def test_a_run_record_s_repr_leaves_out_its_team_definition(workspace: Workspace) -> None:
    definition = {"agents": [{"id": f"agent_{i}", "role": "R" * 50} for i in range(40)]}
    workspace.runs.start("r", "team", None, {}, fingerprint="f", definition=definition)
    record = workspace.runs.get("r")
    assert record is not None
    assert record.definition == definition  # kept, only not shown
    assert "agent_1" not in repr(record)
    assert len(repr(record)) < 600


def test_a_closed_workspace_refuses_every_use_and_opens_nothing_again(
    workspace: Workspace,
) -> None:
    """Before: the SQLite pool opened new connections after ``close`` (a closed App went on
    running); the Postgres pool raised psycopg-pool's bare ``PoolClosed``."""
    workspace.runs.start("r1", "team", None, {})
    workspace.store.put(("ns",), "k", {"v": 1})
    workspace.close()
    uses = {
        "runs": lambda: workspace.runs.get("r1"),
        "start": lambda: workspace.runs.start("r2", "team", None, {}),
        "events": lambda: workspace.events.list("r1"),
        "ledger": lambda: workspace.ledger.run_usage("r1"),
        "saver": lambda: workspace.saver.get_tuple({"configurable": {"thread_id": "r1"}}),
        "store": lambda: workspace.store.get(("ns",), "k"),
    }
    for name, use in uses.items():
        with pytest.raises(InputError, match=r"the workspace .* was closed") as caught:
            use()
        assert caught.value.field == "db", name
    workspace.close()  # a second close is harmless
