"""Trace, metrics and drawings: complete, in order, moving with the run, offline."""

from __future__ import annotations

import itertools
import json
import socket
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from corral import load_team
from tests.conftest import ROOT, SUPPORT_DESK, TICKET, run_cli

RUNAWAY = ROOT / "examples" / "runaway" / "team.yaml"


def test_trace_has_every_agents_input_output_and_decision_in_order(tmp_path: Path) -> None:
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        result = app.run(json.loads(TICKET.read_text()))
        trace = app.trace(result.run_id)
    steps = trace.of("step")
    assert [s.agent for s in steps] == result.path
    for step, nxt in itertools.pairwise(steps):
        # what one agent handed on is exactly what the next received
        assert step.detail["output"] == nxt.detail["inbound"]
        assert step.detail["decision"] == f"-> {nxt.agent} ({nxt.detail['inbound_schema']})"
    assert steps[-1].detail["decision"] == "-> END (Reply)"
    assert steps[-1].detail["output"] == result.output
    calls = trace.of("llm_call")
    assert [c.agent for c in calls] == ["triage", "billing", "qa", "writer"]
    assert sum(c.detail["input_tokens"] for c in calls) == result.usage["input_tokens"]
    assert trace.of("input")[0].detail["input"]
    assert "<table>" in trace._repr_html_()
    assert [e.at for e in trace] == sorted(e.at for e in trace)


def test_trace_shows_guard_verdicts_and_subtasks(tmp_path: Path) -> None:
    with load_team(RUNAWAY).compile(db=tmp_path / "w.db") as app:
        result = app.run({"goal": "an email"})
        trace = app.trace(result.run_id)
    kinds = {e.kind for e in trace}
    assert {"step", "subtask", "guard_trip", "tasks_created", "llm_call"} <= kinds
    assert len(trace.of("subtask")) == result.tasks_created + sum(
        1 for e in trace.of("subtask") if e.detail["status"] == "refused"
    )
    assert any(e.detail.get("guard") == "task_rate" for e in trace.of("guard_trip"))


def test_metrics_move_with_the_run_and_are_served(tmp_path: Path) -> None:
    with load_team(SUPPORT_DESK).compile(db=tmp_path / "w.db") as app:
        registry = app.metrics.registry
        before = registry.get_sample_value(
            "corral_llm_calls_total", {"agent": "triage", "model": "scripted"}
        )
        result = app.run(json.loads(TICKET.read_text()))
        tokens = sum(
            registry.get_sample_value(
                "corral_llm_tokens_total", {"agent": a, "model": "scripted", "type": t}
            )
            or 0
            for a in ("triage", "billing", "qa", "writer")
            for t in ("input", "output")
        )
        assert before is None
        assert tokens == result.usage["input_tokens"] + result.usage["output_tokens"]
        assert (
            registry.get_sample_value("corral_node_duration_seconds_count", {"agent": "intake"})
            == 1
        )
        assert (
            registry.get_sample_value(
                "corral_runs_total", {"team": "support_desk", "status": "completed"}
            )
            == 1
        )
        ratio = registry.get_sample_value("corral_budget_used_ratio", {"agent": "billing"})
        billing = sum(
            registry.get_sample_value(
                "corral_llm_tokens_total", {"agent": "billing", "model": "scripted", "type": t}
            )
            or 0
            for t in ("input", "output")
        )
        assert ratio == pytest.approx(billing / 200_000)
        server, _ = app.metrics.serve(0)
        try:
            url = f"http://127.0.0.1:{server.server_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read().decode()
        finally:
            server.shutdown()
    assert 'corral_llm_calls_total{agent="qa",model="scripted"} 1.0' in body
    assert "run_id" not in body  # never a label
    with load_team(RUNAWAY).compile(db=tmp_path / "r.db") as app:
        app.run({"goal": "g"})
        assert (
            app.metrics.registry.get_sample_value(
                "corral_guard_trips_total", {"guard": "task_rate"}
            )
            >= 1
        )
        assert app.metrics.registry.get_sample_value("corral_tasks_created_total") >= 4


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a drawing tried to open a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_every_export_format_is_made_offline_and_parses(no_network: None) -> None:
    team = load_team(SUPPORT_DESK)
    mermaid = team.draw("mermaid")
    assert isinstance(mermaid, str)
    assert 'triage -.-|"reports to"| qa' in mermaid
    assert "class triage,billing,qa supervisor" in mermaid
    dot = team.draw("dot")
    assert isinstance(dot, str)
    assert '"triage" -> "billing" [label="Triage [category = billing]\\n+ reports to"];' in dot
    assert '"triage" -> "qa" [label="reports to", style=dotted, arrowhead=none' in dot
    svg = team.draw("svg", highlight=["intake", "triage"])
    assert isinstance(svg, str)
    assert ET.fromstring(svg).tag.endswith("svg")
    png = team.draw("png")
    assert isinstance(png, bytes)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(str(team.draw("json")))
    graph = nx.node_link_graph(data, edges="edges")
    assert set(graph.nodes) >= {a.id for a in team.agents}
    graphml = nx.parse_graphml(str(team.draw("graphml")))
    kinds = {d["kind"] for _, _, d in graphml.edges(data=True)}
    assert kinds == {"flow", "reports_to"}  # the flow feeds every report: none delegated
    bundle = team._repr_mimebundle_()
    assert set(bundle) >= {"image/svg+xml", "text/vnd.mermaid"}


def test_mermaid_snapshot_of_the_runaway_team() -> None:
    drawn = str(load_team(RUNAWAY).draw("mermaid", highlight=["director"]))
    snapshot = Path(__file__).with_name("runaway.mermaid")
    assert drawn == snapshot.read_text(), "the drawing changed; if on purpose, update " + str(
        snapshot
    )


def test_runs_show_prints_the_tree_json_and_the_path_picture(tmp_path: Path) -> None:
    ran = run_cli("run", SUPPORT_DESK, "--input", f"@{TICKET}", "--run-id", "t1", cwd=tmp_path)
    assert ran.code == 0
    tree = run_cli("runs", "show", "t1", cwd=tmp_path)
    assert tree.code == 0, tree.stderr
    for agent in ("intake", "triage", "billing", "writer"):
        assert agent in tree.stdout
    assert "llm_call" in tree.stdout
    as_json = run_cli("runs", "show", "t1", "--json", cwd=tmp_path)
    assert [e["agent"] for e in as_json.json if e["kind"] == "step"] == [
        "intake",
        "triage",
        "billing",
        "refund_policy",
        "qa",
        "writer",
    ]
    picture = run_cli("runs", "show", "t1", "--format", "svg", "-o", "t1.svg", cwd=tmp_path)
    assert picture.code == 0, picture.stderr
    svg = (tmp_path / "t1.svg").read_text()
    assert ET.fromstring(svg).tag.endswith("svg")
    mermaid = run_cli("runs", "show", "t1", "--format", "mermaid", cwd=tmp_path)
    assert "class intake,refund_policy,writer visited" in mermaid.stdout
    assert "class triage,billing,qa visitedsupervisor" in mermaid.stdout


def test_json_logs_carry_budget_alerts(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text(
        SUPPORT_DESK.read_text().replace(
            "budget: {max_output_tokens: 800, max_task_calls: 4, daily_tokens: 200000}",
            "budget: {max_output_tokens: 200, daily_tokens: 1000, alert_threshold: 0.2}",
        )
    )
    (tmp_path / "rules.py").write_text((SUPPORT_DESK.parent / "rules.py").read_text())
    ran = run_cli("--log-json", "run", team, "--input", f"@{TICKET}", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    records = [json.loads(line) for line in ran.stderr.splitlines() if line.startswith("{")]
    alert = next(r for r in records if r["logger"] == "corral.budget")
    assert alert["level"] == "WARNING"
    assert "budget alert: billing" in alert["message"]
