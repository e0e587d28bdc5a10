"""Property: over random trees, limits and delegation scripts, no guard is ever exceeded."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral import load_team

POLICY = st.sampled_from(["halt", "escalate"])


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 7))
    parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    agents = [f"a{i}" for i in range(n)]
    limits = {
        "max_delegation_depth": draw(st.integers(1, 3)),
        "max_subtasks": draw(st.integers(1, 4)),
        "task_rate": {"count": draw(st.integers(1, 8)), "per_seconds": 3600},
        "cooldown_seconds": draw(st.sampled_from([0, 60])),
        "max_pending_tasks": draw(st.integers(1, 10)),
        "max_llm_calls_per_task": draw(st.integers(2, 6)),
        "on_trip": {
            g: draw(POLICY)
            for g in ("max_delegation_depth", "max_subtasks", "task_rate", "max_pending_tasks")
        },
    }
    script: dict[str, list[dict[str, Any]]] = {}
    reports = {
        a: [b for b, p in zip(agents, parents, strict=True) if p is not None and agents[p] == a]
        for a in agents
    }
    for agent in agents:
        replies = []
        for _ in range(draw(st.integers(1, 4))):
            if draw(st.integers(0, 4)) > 0:  # mostly delegate, mostly to real reports
                pool = reports[agent] if reports[agent] and draw(st.integers(0, 5)) > 0 else agents
                targets = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
                replies.append(
                    {
                        "delegate": [
                            {"assignee": t, "instruction": "work", "payload": {"question": "q"}}
                            for t in targets
                        ]
                    }
                )
            else:
                replies.append({"auto": True})
        script[agent] = replies
    return {
        "agents": agents,
        "parents": parents,
        "limits": limits,
        "script": script,
        "then": draw(st.sampled_from(["auto", "repeat"])),
    }


def team_file(root: Path, s: dict[str, Any]) -> Path:
    agents = []
    for agent, parent in zip(s["agents"], s["parents"], strict=True):
        spec: dict[str, Any] = {"id": agent, "role": agent, "output": "Note"}
        if parent is not None:
            spec |= {"reports_to": s["agents"][parent], "input": "Ask"}
        agents.append(spec)
    manifest = {
        "version": 1,
        "name": "random",
        "models": {"default": {"use": "scripted", "script": "script.yaml"}},
        "schemas": {"Ask": {"fields": {"question": "str"}}, "Note": {"fields": {"text": "str"}}},
        "agents": agents,
        "flow": {
            "entry": "a0",
            "input": "Ask",
            "output": "Note",
            "edges": [{"from": "a0", "to": "END", "schema": "Note"}],
        },
        "guards": s["limits"],
    }
    (root / "script.yaml").write_text(yaml.safe_dump({"agents": s["script"], "then": s["then"]}))
    path = root / "team.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


SEEN: dict[str, int] = {}


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(s=scenarios())
def check_no_guard_is_ever_exceeded(s: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with load_team(team_file(root, s)).compile(db=root / "w.db") as app:
            result = app.run({"question": "q"})
        with sqlite3.connect(root / "w.db") as conn:
            rows = conn.execute(
                "SELECT id, parent_id, assignee, depth, attempts, created_at, finished_at "
                "FROM tasks WHERE status != 'refused'"
            ).fetchall()
    limits = s["limits"]
    manager = {
        a: s["agents"][p] for a, p in zip(s["agents"], s["parents"], strict=True) if p is not None
    }
    by_id = {r[0]: r for r in rows}
    assert result.status in ("completed", "halted", "failed")
    assert len(rows) <= limits["task_rate"]["count"]
    rounds: dict[str, int] = {}
    for task_id, parent, assignee, depth, attempts, created, _ in rows:
        delegator = by_id[parent][2] if parent else "a0"
        assert manager.get(assignee) == delegator, "only direct reports receive work"
        assert 1 <= depth <= limits["max_delegation_depth"]
        assert attempts <= 1, "no task is claimed twice in one run"
        round_key = task_id.rsplit(".", 1)[0]
        rounds[round_key] = rounds.get(round_key, 0) + 1
        open_then = sum(1 for r in rows if r[5] <= created and (r[6] is None or r[6] > created))
        assert open_then <= limits["max_pending_tasks"]
    assert all(size <= limits["max_subtasks"] for size in rounds.values())
    halts = [g for g in result.guards_tripped if g["policy"] == "halt"]
    if halts:
        assert result.status == "halted", json.dumps(result.to_dict())[:500]
    assert result.tasks_created == len(rows)
    SEEN["runs"] = SEEN.get("runs", 0) + 1
    SEEN["delegating runs"] = SEEN.get("delegating runs", 0) + (len(rows) > 0)
    for g in result.guards_tripped:
        SEEN[g["guard"]] = SEEN.get(g["guard"], 0) + 1


def test_no_guard_is_ever_exceeded() -> None:
    SEEN.clear()
    check_no_guard_is_ever_exceeded()
    # The examples really delegate and really meet the limits (not a vacuous pass).
    assert SEEN["delegating runs"] * 4 >= SEEN["runs"], SEEN
    for guard in (
        "max_delegation_depth",
        "max_subtasks",
        "task_rate",
        "max_pending_tasks",
        "max_llm_calls_per_task",
    ):
        assert SEEN.get(guard, 0) > 0, (guard, SEEN)
