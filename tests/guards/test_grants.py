"""Budgets follow delegation: subtasks run on grants carved from their supervisor's task
budget, so a subtree never spends more than its root's task budget."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral import BudgetExceeded, load_team

HEAD = """\
version: 1
name: granted
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Ask: {{fields: {{question: str}}}}
  Note: {{fields: {{text: str}}}}
budget: {{agent_defaults: {{max_output_tokens: {out}}}}}
flow:
  entry: a
  input: Ask
  output: Note
  edges: [{{from: a, to: END, schema: Note}}]
guards:
  max_delegation_depth: 6
  max_subtasks: 5
  max_llm_calls_per_task: 6
  on_trip: {{budget: {policy}}}
agents:
  - {{id: a, role: Root, output: Note, budget: {{max_task_tokens: {budget}}}}}
"""


def build(
    write: Callable[..., Path],
    children: dict[str, list[str]],
    *,
    budget: int,
    out: int = 200,
    grants: dict[str, str] | None = None,
    policy: str = "escalate",
) -> Any:
    """A team whose reports-to tree is ``children``; each supervisor delegates once to
    all its reports, then answers."""
    lines = [HEAD.format(out=out, budget=budget, policy=policy)]
    script = ["agents:"]
    for parent, kids in children.items():
        for kid in kids:
            grant = (grants or {}).get(kid)
            lines.append(
                f"  - {{id: {kid}, role: R{kid}, reports_to: {parent}, input: Ask, output: Note"
                + (f", grant: {grant}" if grant else "")
                + "}\n"
            )
        if kids:
            subs = ", ".join(
                f"{{assignee: {k}, instruction: do part {k}, payload: {{question: q{k}}}}}"
                for k in kids
            )
            script.append(f"  {parent}:\n    - delegate: [{subs}]")
    write("script.yaml", "\n".join(script) + "\n")
    return load_team(write("team.yaml", "".join(lines)))


def spent(app: Any, run_id: str) -> int:
    return sum(
        c["input_tokens"] + c["output_tokens"]
        for c in app.ledger.calls(run_id)
        if c["status"] == "settled"
    )


def grants_of(app: Any, run_id: str) -> list[dict[str, int]]:
    return [e["grants"] for e in app.events.list(run_id, "tasks_created") if "grants" in e]


def test_subtasks_get_equal_shares_of_what_is_left(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    team = build(write, {"a": ["b", "c"]}, budget=6000)
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "q"})
        first = app.ledger.calls(result.run_id)[0]
        granted = grants_of(app, result.run_id)
        assert spent(app, result.run_id) <= 6000
    assert result.status == "completed"
    left = 6000 - first["input_tokens"] - first["output_tokens"]
    assert len(granted) == 1
    shares = sorted(granted[0].values())
    assert shares == [left // 2, left // 2]


def test_explicit_grants_come_first_and_the_rest_is_shared(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    grants = {"b": "{share: 0.25}", "c": "{tokens: 100}"}
    team = build(write, {"a": ["b", "c", "d"]}, budget=4000, grants=grants)
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "q"})
        first = app.ledger.calls(result.run_id)[0]
        tasks = {t.id: t.assignee for t in app.board.tasks(run_id=result.run_id)}
        granted = grants_of(app, result.run_id)[0]
    left = 4000 - first["input_tokens"] - first["output_tokens"]
    by = {tasks[k]: v for k, v in granted.items()}
    assert by == {"b": int(0.25 * left), "c": 100, "d": left - int(0.25 * left) - 100}
    assert result.status == "completed"


def test_a_grant_larger_than_what_is_left_is_refused_before_the_round(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    team = build(write, {"a": ["b"]}, budget=1000, grants={"b": "{tokens: 5000}"}, policy="halt")
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"question": "q"})
        tasks = app.board.tasks(run_id=result.run_id)
    assert result.status == "halted"
    error = result.errors[0]
    assert isinstance(error, BudgetExceeded)
    assert error.layer == "task_tokens (grants to subtasks)"
    assert [t.status for t in tasks] == ["refused"]


@st.composite
def trees(draw: st.DrawFn) -> dict[str, list[str]]:
    """A reports-to tree under ``a``: up to depth 3, up to 3 reports each."""
    children: dict[str, list[str]] = {}
    frontier, names = ["a"], iter(f"n{i}" for i in range(100))
    for _ in range(draw(st.integers(1, 3))):
        nxt = []
        for parent in frontier:
            kids = [next(names) for _ in range(draw(st.integers(parent == "a", 3)))]
            children[parent] = kids
            nxt += kids
        frontier = nxt
    return children


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tree=trees(), budget=st.integers(400, 8000), out=st.integers(120, 250))
def test_a_subtree_never_spends_more_than_its_roots_task_budget(
    write: Callable[..., Path],
    tmp_path_factory: Any,
    tree: dict[str, list[str]],
    budget: int,
    out: int,
) -> None:
    team = build(write, tree, budget=budget, out=out)
    db = tmp_path_factory.mktemp("grants") / "w.db"
    with team.compile(db=db) as app:
        result = app.run({"question": "q"})
        total = spent(app, result.run_id)
    assert total <= budget + out, (result.status, total, budget, out, tree)


RESUMED = """\
version: 1
name: resumed
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Ask: {{fields: {{question: str}}}}
  Note: {{fields: {{text: str}}}}
budget: {{agent_defaults: {{max_output_tokens: 200}}}}
flow:
  entry: a
  input: Ask
  output: Note
  edges: [{{from: a, to: END, schema: Note}}]
guards: {{on_trip: {{budget: halt}}}}
agents:
  - {{id: a, role: Root, output: Note, budget: {{max_task_tokens: 6000}}}}
  - {{id: b, role: Rb, reports_to: a, input: Ask, output: Note,
     budget: {{max_task_calls: {calls}}}}}
"""


def test_a_resumed_round_gives_its_grants_back_at_the_join(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    # The subtask's own budget halts the run mid-round; resumed with a raised limit, the
    # round keeps the grant it carved, and its join must still replace that grant with
    # what the subtask spent, or the supervisor's task stays charged the whole grant.
    write(
        "script.yaml",
        "agents:\n  a:\n    - delegate: [{assignee: b, instruction: do b, "
        "payload: {question: qb}}]\n  b:\n    - raw: not json\n",
    )
    db = tmp_path / "w.db"
    with load_team(write("team.yaml", RESUMED.format(calls=1))).compile(db=db) as app:
        assert app.run({"question": "q"}, run_id="g1").status == "halted"
    with load_team(write("team.yaml", RESUMED.format(calls=5))).compile(db=db) as app:
        resumed = app.resume("g1")
        assert resumed.status == "completed", resumed.errors
        total = spent(app, "g1")
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT settled FROM task_grants").fetchall() == [(1,)]
        (root,) = conn.execute(
            "SELECT tokens FROM usage_totals WHERE scope = 'task' AND key = 'g1:a@1'"
        ).fetchone()
    assert root == total  # the root's task: its own calls and its subtree's, not a grant
