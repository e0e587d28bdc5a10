"""Supervisors delegate to direct reports only; rounds join; done subtasks never rerun."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import ToolMessage

from corral import load_team
from tests.conftest import SeenMessages

ORG = """\
version: 1
name: org
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Ask: {{fields: {{question: str}}}}
  Note: {{fields: {{text: str}}}}
agents:
  - {{id: lead, role: Lead, output: Note}}
  - {{id: billing_mgr, role: Billing manager, reports_to: lead, input: Ask, output: Note}}
  - {{id: tech_mgr, role: Tech manager, reports_to: lead, input: Ask, output: Note}}
  - {{id: clerk, role: Billing clerk, reports_to: billing_mgr, input: Ask, output: Note}}
  - {{id: dev, role: Developer, reports_to: tech_mgr, input: Ask, output: Note}}
flow:
  entry: lead
  input: Ask
  output: Note
  edges: [{{from: lead, to: END, schema: Note}}]
guards: {{max_delegation_depth: {depth}, max_llm_calls_per_task: 8{extra}}}
"""


def sub(to: str, question: str = "q") -> str:
    return f"{{assignee: {to}, instruction: look into it, payload: {{question: {question}}}}}"


def org(write: Callable[..., Path], script: str, depth: int = 3, extra: str = "") -> Any:
    write("script.yaml", script)
    return load_team(write("org.yaml", ORG.format(depth=depth, extra=extra and ", " + extra)))


def results_seen(seen: SeenMessages, agent_role: str) -> list[list[dict[str, Any]]]:
    """The subtask results each of an agent's model calls was shown."""
    out = []
    for messages in seen.calls:
        if agent_role not in str(messages[0].content):
            continue
        for m in messages:
            if isinstance(m, ToolMessage) and str(m.content).startswith("results"):
                out.append(json.loads(str(m.content).split(": ", 1)[1]))
    return out


def test_delegation_outside_the_tree_is_refused_before_anything_runs(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    team = org(write, f"agents:\n  lead:\n    - delegate: [{sub('clerk')}]\n")
    seen = SeenMessages()
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "why was I charged twice?"}, config={"callbacks": [seen]})
        refused = app.board.tasks(run_id=result.run_id)
        events = app.events.list(result.run_id, "delegation_refused")
    assert result.status == "completed"  # the lead was told, and answered itself
    assert [(t.assignee, t.status) for t in refused] == [("clerk", "refused")]
    assert "'clerk' is not your direct report" in events[0]["reason"]
    assert not any("Billing clerk" in str(m[0].content) for m in seen.calls)  # never ran
    feedback = [m for m in seen.calls[-1] if isinstance(m, ToolMessage)]
    assert "refused, nothing was started" in str(feedback[0].content)
    assert result.tasks_created == 0


def test_cross_team_work_goes_through_managers_and_results_flow_up(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    script = (
        f"agents:\n  lead:\n    - delegate: [{sub('billing_mgr')}, {sub('tech_mgr')}]\n"
        f"  billing_mgr:\n    - delegate: [{sub('clerk', 'refund')}]\n"
        f"  tech_mgr:\n    - delegate: [{sub('dev', 'crash')}]\n"
    )
    seen = SeenMessages()
    with org(write, script).compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "refund and crash"}, config={"callbacks": [seen]})
        tasks = app.board.tasks(run_id=result.run_id)
    assert result.status == "completed"
    assert sorted((t.assignee, t.depth, t.status) for t in tasks) == [
        ("billing_mgr", 1, "done"),
        ("clerk", 2, "done"),
        ("dev", 2, "done"),
        ("tech_mgr", 1, "done"),
    ]
    parents = {t.assignee: t.parent_id for t in tasks}
    by_id = {t.id: t.assignee for t in tasks}
    assert by_id[parents["clerk"]] == "billing_mgr"
    assert by_id[parents["dev"]] == "tech_mgr"
    (lead_results,) = results_seen(seen, "You are Lead")
    assert {r["assignee"] for r in lead_results} == {"billing_mgr", "tech_mgr"}
    assert all(r["status"] == "done" for r in lead_results)
    assert result.tasks_created == 4
    assert result.usage["llm_calls"] == 2 + 2 * 2 + 2  # lead, managers, workers


def test_a_round_joins_before_the_supervisor_reads_it(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    script = (
        f"agents:\n  lead:\n    - delegate: [{sub('billing_mgr')}, {sub('tech_mgr')}]\n"
        f"    - delegate: [{sub('tech_mgr', 'again')}]\n"
    )
    seen = SeenMessages()
    with org(write, script).compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "two rounds"}, config={"callbacks": [seen]})
    assert result.status == "completed"
    order = [("lead" if "You are Lead" in str(m[0].content) else "report") for m in seen.calls]
    assert order == ["lead", "report", "report", "lead", "report", "lead"]
    rounds = results_seen(seen, "You are Lead")
    # The second call saw the whole first round; the third sees both rounds in order.
    assert [len(r) for r in rounds] == [2, 2, 1]


def test_done_subtasks_are_reused_on_resume_not_run_again(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    # The lead's first call is replayed on resume (not made again): its second call,
    # the one that failed, is made again and answers.
    again = f"    - delegate: [{sub('billing_mgr')}, {sub('tech_mgr')}]\n"
    script = f"agents:\n  lead:\n{again}    - error: bad_request\n"
    seen = SeenMessages()
    with org(write, script).compile(db=tmp_path / "w.db") as app:
        failed = app.run({"question": "q"}, run_id="r1", config={"callbacks": [seen]})
        assert failed.status == "failed"
        resumed = app.resume("r1", config={"callbacks": [seen]})
    assert resumed.status == "completed"
    managers = [m for m in seen.calls if "manager" in str(m[0].content)]
    assert len(managers) == 2  # each manager answered once, across run and resume
    (_, reused) = results_seen(seen, "You are Lead")
    assert all(r.get("reused") for r in reused)
    assert resumed.tasks_created == 2


def test_depth_limit_escalates_back_to_the_delegator(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    script = (
        f"agents:\n  lead:\n    - delegate: [{sub('billing_mgr')}]\n"
        f"  billing_mgr:\n    - delegate: [{sub('clerk')}]\n"
    )
    with org(write, script, depth=1).compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "q"})
        tasks = app.board.tasks(run_id=result.run_id)
    assert result.status == "completed"  # escalate: billing_mgr was refused and answered
    trips = [(g["guard"], g["limit"], g["seen"], g["policy"]) for g in result.guards_tripped]
    assert trips == [("max_delegation_depth", 1, 2, "escalate")]
    assert sorted((t.assignee, t.status) for t in tasks) == [
        ("billing_mgr", "done"),
        ("clerk", "refused"),
    ]


def test_each_round_gets_its_own_results_after_resume(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    one = f"    - delegate: [{sub('billing_mgr', 'first')}]\n"
    two = f"    - delegate: [{sub('tech_mgr', 'second')}]\n"
    script = f"agents:\n  lead:\n{one}{two}    - error: bad_request\n"
    seen = SeenMessages()
    with org(write, script).compile(db=tmp_path / "w.db") as app:
        assert app.run({"question": "q"}, run_id="r2").status == "failed"
        resumed = app.resume("r2", config={"callbacks": [seen]})
    assert resumed.status == "completed"
    # Both delegating calls are replayed, not made again: the call that failed, made
    # again, sees each round's reused results.
    rounds = results_seen(seen, "You are Lead")
    assert [[r["assignee"] for r in one_round] for one_round in rounds] == [
        ["billing_mgr"],
        ["tech_mgr"],
    ]
    assert all(r.get("reused") for one_round in rounds for r in one_round)


def test_model_calls_per_task_cap_every_agent(write: Callable[..., Path], tmp_path: Path) -> None:
    from tests.conftest import MINI

    write("script.yaml", "agents:\n  solver:\n    - raw: a\n    - raw: b\n    - raw: c\n")
    text = MINI.format(model="flaky").replace(
        "schemas:", "models:\n  flaky: {use: scripted, script: script.yaml}\nschemas:", 1
    )
    team = load_team(write("mini.yaml", text + "guards: {max_llm_calls_per_task: 2}\n"))
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"})
    assert result.status == "halted"
    assert result.errors[0].guard == "max_llm_calls_per_task"
    assert [(g["guard"], g["limit"], g["seen"]) for g in result.guards_tripped] == [
        ("max_llm_calls_per_task", 2, 3)
    ]


def test_calls_per_task_count_each_agents_own_calls(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """A report's calls count against its own task, not its supervisor's (the boss with
    a limit of 3 makes 2 calls; its helper makes 3 for its own task)."""
    script = (
        f"agents:\n  lead:\n    - delegate: [{sub('billing_mgr')}]\n"
        "  billing_mgr:\n    - raw: a\n    - raw: b\n"
    )
    team = org(write, script)
    text = team.source.read_text().replace(
        "  - {id: lead, role: Lead, output: Note}",
        "  - {id: lead, role: Lead, output: Note, guards: {max_llm_calls_per_task: 3}}",
    )
    team = load_team(write("org.yaml", text))
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "why?"})
        calls = app.ledger.calls(result.run_id)
    assert result.status == "completed", result.errors
    assert [c["agent"] for c in calls].count("billing_mgr") == 3  # two invalid, one valid
    assert [c["agent"] for c in calls].count("lead") == 2
    assert result.usage["llm_calls"] == 5  # the run's total still counts them all
