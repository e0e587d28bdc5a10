"""A parallel step: one answer fans out to several agents at once, and a join agent gets
their answers together, typed, under the branches' ids."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral import ManifestError, StepDone, load_team

TEAM = """\
version: 1
name: parallel
schemas:
  Case: {{fields: {{summary: str}}}}
  Finding: {{fields: {{note: str, score: {{type: int, ge: 0, le: 10}}}}}}
  Findings: {{fields: {{billing: Finding, technical: {technical_type}}}}}
  Reply: {{fields: {{text: str}}}}
agents:
  - {{id: triage, role: Triage}}
  - {{id: billing, role: Billing, output: Finding}}
  - {{id: technical, role: Technical, output: Finding}}
  - {{id: writer, role: Writer, input: Findings}}
flow:
  entry: triage
  input: Case
  output: Reply
  edges:
    - {{from: writer, to: END, schema: Reply}}
  parallel:
    - {{from: triage, to: [billing, technical], schema: Case, join: writer}}
"""


def team(write: Callable[..., Path], technical_type: str = "Finding") -> Any:
    return load_team(write("team.yaml", TEAM.format(technical_type=technical_type)))


def test_branches_run_in_one_step_and_the_join_gets_their_typed_answers(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    with team(write).compile(db=tmp_path / "w.db") as app:
        events = list(app.stream({"summary": "charged twice"}))
        trace = app.trace(events[0].run_id)
    assert events[-1].status == "completed", events[-1]  # type: ignore[union-attr]
    steps = [e for e in events if isinstance(e, StepDone)]
    assert steps[0].agent == "triage"
    assert sorted(s.agent for s in steps[1:3]) == ["billing", "technical"]
    join = steps[3]
    assert join.agent == "writer"
    assert join.inbound_schema == "Findings"
    assert set(join.inbound) == {"billing", "technical"}
    branch_steps = {s.agent: s.output for s in steps[1:3]}
    assert join.inbound == branch_steps  # each branch's answer, under its id
    assert [s.agent for s in trace.of("step")].count("writer") == 1  # the join ran once
    traced = {e.agent: e.detail for e in trace.of("step")}
    assert traced["triage"]["output"] == steps[0].output  # what it sent to both branches
    for branch in ("billing", "technical"):  # each got the fanned answer, typed
        assert traced[branch]["inbound_schema"] == "Case"
        assert traced[branch]["inbound"] == steps[0].output
        assert traced[branch]["output"] == branch_steps[branch]


def test_live_progress_reports_the_fan_out_and_every_branch(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    seen: list[tuple[str, str, str]] = []
    with team(write).compile(db=tmp_path / "w.db") as app:
        result = app.run(
            {"summary": "charged twice"},
            on_step=lambda e: seen.append((e.agent, e.target, e.schema)),
        )
    assert result.status == "completed"
    assert seen[0] == ("triage", "billing+technical", "Case")
    assert sorted(seen[1:3]) == [
        ("billing", "writer", "Finding"),
        ("technical", "writer", "Finding"),
    ]
    assert seen[3] == ("writer", "END", "Reply")


def test_a_join_whose_input_does_not_match_the_branches_is_refused(
    write: Callable[..., Path],
) -> None:
    with pytest.raises(ManifestError, match="join agent 'writer' takes Findings"):
        team(write, technical_type="Case")


def test_a_branch_without_an_output_is_refused(write: Callable[..., Path]) -> None:
    text = TEAM.format(technical_type="Finding").replace(
        "{id: billing, role: Billing, output: Finding}", "{id: billing, role: Billing}"
    )
    with pytest.raises(ManifestError, match="branch 'billing' of parallel step 0"):
        load_team(write("team.yaml", text))


def test_min_confidence_on_a_fanning_agent_or_a_branch_is_refused(
    write: Callable[..., Path],
) -> None:
    text = TEAM.format(technical_type="Finding").replace(
        "{id: billing, role: Billing, output: Finding}",
        "{id: billing, role: Billing, output: Finding, min_confidence: 0.6, "
        "confidence_field: score}",
    )
    with pytest.raises(ManifestError, match=r"team.yaml:\d+ \(agents.1.min_confidence\)"):
        load_team(write("team.yaml", text))


def test_the_drawing_shows_the_fan_out_and_the_join(write: Callable[..., Path]) -> None:
    drawn = team(write).draw("mermaid")
    assert isinstance(drawn, str)
    for branch in ("billing", "technical"):
        assert f'triage -->|"Case (parallel)"| {branch}' in drawn
        assert f'{branch} -->|"Finding (joined)"| writer' in drawn


def test_the_graph_data_has_the_parallel_edges(write: Callable[..., Path]) -> None:
    data = json.loads(str(team(write).draw("json")))
    flow = {(e["source"], e["target"], e["label"]) for e in data["edges"]}
    assert ("triage", "billing", "Case (parallel)") in flow
    assert ("technical", "writer", "Finding (joined)") in flow


def test_a_run_picture_marks_every_branch_of_the_parallel_step_taken(
    write: Callable[..., Path],
) -> None:
    drawn = str(team(write).draw("dot", highlight=["triage", "billing", "technical", "writer"]))
    for a, b in [("triage", "billing"), ("triage", "technical"), ("technical", "writer")]:
        line = next(x for x in drawn.splitlines() if x.strip().startswith(f'"{a}" -> "{b}"'))
        assert 'color="#2e7d32"' in line, line
    assert '"billing" -> "technical"' not in drawn


@pytest.mark.parametrize("failing", ["triage", "technical"])
def test_a_fallback_answer_in_a_parallel_step_is_flagged_degraded_in_the_trace(
    write: Callable[..., Path], tmp_path: Path, failing: str
) -> None:
    write("script.yaml", f"agents:\n  {failing}:\n    - {{error: bad_request}}\nthen: auto\n")
    write(
        "rules.py",
        "def case(c):\n    return {'summary': 'fallback'}\n\n\n"
        "def finding(c):\n    return {'note': 'fallback', 'score': 1}\n",
    )
    fallback = "case" if failing == "triage" else "finding"
    text = TEAM.format(technical_type="Finding").replace(
        f"{{id: {failing}, role: {failing.title()}",
        f"{{id: {failing}, role: {failing.title()}, fallback: {{function: 'rules:{fallback}'}}",
    )
    text = text.replace(
        "schemas:", "models:\n  default: {use: scripted, script: script.yaml}\nschemas:"
    )
    with load_team(write("team.yaml", text)).compile(db=tmp_path / "w.db") as app:
        result = app.run({"summary": "charged twice"}, run_id="p1")
        steps = {e.agent: e for e in app.trace("p1").of("step")}
    assert result.status == "completed", result.errors
    assert {agent: e.summary for agent, e in steps.items()} == {
        "triage": "-> billing+technical (Case)" + (" [degraded]" if failing == "triage" else ""),
        "billing": "-> writer (Finding)",
        "technical": "-> writer (Finding)" + (" [degraded]" if failing == "technical" else ""),
        "writer": "-> END (Reply)",
    }
    if failing == "technical":  # a branch's answer, as its join gathered it
        assert steps["technical"].detail["output"] == {"note": "fallback", "score": 1}


FLAKY_BRANCH = """\
version: 1
name: par
schemas:
  Q: {fields: {text: str}}
  F: {fields: {v: int}}
  Fs: {fields: {ok: F, bad: F}}
agents:
  - {id: tri, kind: function, function: "par_steps:tri"}
  - {id: ok, kind: function, function: "par_steps:ok", output: F}
  - {id: bad, kind: function, function: "par_steps:bad", output: F}
  - {id: join, kind: function, function: "par_steps:join", input: Fs}
flow:
  entry: tri
  input: Q
  output: Q
  parallel:
    - {from: tri, to: [ok, bad], schema: Q, join: join}
  edges:
    - {from: join, to: END, schema: Q}
"""


def test_a_branch_that_failed_then_answered_on_resume_shows_its_answer_in_the_trace(
    write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the trace kept the branch's first error ('error: NodeError(...)') after the
    resume it answered in, and never showed its answer."""
    flag = tmp_path / "failed"
    write(
        "par_steps.py",
        f"import pathlib\nF = pathlib.Path({str(flag)!r})\n\n"
        "def tri(q):\n    return {'text': q.text}\n\n"
        "def ok(q):\n    return {'v': 1}\n\n"
        "def bad(q):\n    if not F.exists():\n        F.touch()\n"
        "        raise RuntimeError('branch down')\n    return {'v': 2}\n\n"
        "def join(f):\n    return {'text': str(f.ok.v + f.bad.v)}\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with load_team(write("team.yaml", FLAKY_BRANCH)).compile(db=tmp_path / "w.db") as app:
        assert app.run({"text": "x"}, run_id="p").status == "failed"
        bad = [e.summary for e in app.trace("p") if e.agent == "bad"]
        assert bad[0].startswith("error: NodeError")
        assert app.resume("p").output == {"text": "3"}
        steps = [(e.agent, e.summary) for e in app.trace("p") if e.kind == "step"]
    assert ("bad", "-> join (F)") in steps
