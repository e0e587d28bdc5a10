"""Human review through the CLI, each decision in a new process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli

CliRunner = Callable[..., Cli]

TEAM = """\
version: 1
name: reviewed
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Question: {{fields: {{text: str}}}}
  Draft: {{fields: {{text: str, confidence: {{type: float, ge: 0, le: 1}}}}}}
agents:
  - {{id: drafter, role: Drafter{extra}}}
  - {{id: sender, role: Sender}}
flow:
  entry: drafter
  input: Question
  output: Draft
  edges:
    - {{from: drafter, to: sender, schema: Draft{edge}}}
    - {{from: sender, to: END, schema: Draft}}
"""


def team(
    write: Callable[..., Path],
    *,
    edge: str = ", review: true",
    extra: str = "",
    script: str = "replies: []\n",
) -> Path:
    write("script.yaml", script)
    return write("team.yaml", TEAM.format(edge=edge, extra=extra))


def start(cli: CliRunner, path: Path, run_id: str) -> Cli:
    paused = cli("run", path, "--input", '{"text": "hello"}', "--run-id", run_id, "--json")
    assert paused.code == 4, paused.stderr
    return paused


def test_edge_review_pauses_and_every_decision_works_across_processes(
    cli: CliRunner, write: Callable[..., Path]
) -> None:
    path = team(write)
    paused = start(cli, path, "r1")
    assert paused.json["status"] == "paused"
    review = paused.json["errors"][0]["review"]
    assert (review["kind"], review["source"], review["target"]) == ("edge", "drafter", "sender")
    assert "--approve | --reject 'reason' | --edit JSON" in paused.stderr
    listed = cli("runs", "--pending", "--json")
    assert [r["run_id"] for r in listed.json] == ["r1"]

    bad = cli("resume", "r1", "--edit", '{"text": 5}')
    assert bad.code == 2
    assert "the edit is not a valid Draft" in bad.stderr
    assert "text: Input should be a valid string" in bad.stderr
    assert "still waiting" in bad.stderr
    undecided = cli("resume", "r1")
    assert undecided.code == 2
    assert "exactly one of approve, reject or edit" in undecided.stderr
    assert [r["run_id"] for r in cli("runs", "--pending", "--json").json] == ["r1"]

    edited = cli(
        "resume", "r1", "--edit", '{"text": "edited by a person", "confidence": 1}', "--json"
    )
    assert edited.code == 0, edited.stderr
    assert edited.json["output"]["text"] == "edited by a person"  # the sender got the edit
    assert edited.json["path"] == ["drafter", "sender"]

    start(cli, path, "r2")
    rejected = cli("resume", "r2", "--reject", "tone is wrong", "--json")
    assert rejected.code == 1
    assert rejected.json["errors"][0] == {
        "type": "Rejected",
        "agent": None,
        "message": "rejected by reviewer: tone is wrong",
    }

    start(cli, path, "r3")
    approved = cli("resume", "r3", "--approve", "--json")
    assert approved.code == 0
    assert approved.json["status"] == "completed"
    assert cli("runs", "--pending", "--json").json == []
    late = cli("resume", "r3", "--approve")
    assert late.code == 2
    assert "not waiting for a review" in late.stderr


def test_a_rejected_run_is_over_and_no_resume_is_suggested(
    cli: CliRunner, write: Callable[..., Path]
) -> None:
    start(cli, team(write), "r1")
    rejected = cli("resume", "r1", "--reject", "tone is wrong")
    assert rejected.code == 1
    assert "Rejected: rejected by reviewer: tone is wrong" in rejected.stderr
    assert "resume with" not in rejected.stderr  # resuming it would only say the same again
    assert "the review rejected the run's work, so the run is over" in rejected.stderr


def test_pending_shows_what_waits_its_payload_cut_in_the_table_and_whole_in_json(
    cli: CliRunner, write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    long = "a refund of 42 euros, " * 12
    path = team(
        write, script=f"agents:\n  drafter:\n    - output: {{text: '{long}', confidence: 0.9}}\n"
    )
    review = start(cli, path, "r1").json["errors"][0]["review"]
    listed = cli("runs", "--pending", "--json").json
    assert [(r["run_id"], r["status"]) for r in listed] == [("r1", "paused")]
    assert listed[0]["review"] == review  # the whole review object
    assert review["payload"] == {"text": long, "confidence": 0.9}
    assert (review["kind"], review["source"], review["target"], review["schema"]) == (
        "edge",
        "drafter",
        "sender",
        "Draft",
    )

    monkeypatch.setenv("COLUMNS", "200")
    table = cli("runs", "--pending")
    assert table.code == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if "r1" in line)
    for shown in ("edge", review["reason"], "drafter → sender", "Draft", '{"text": "a refund of'):
        assert shown in row
    assert "…" in row  # the payload, cut to a readable width
    assert long not in table.stdout


def test_a_failing_agent_escalates_to_a_person_who_supplies_its_answer(
    cli: CliRunner, write: Callable[..., Path]
) -> None:
    path = team(
        write,
        edge="",
        extra=", on_failure: review",
        script="agents:\n  drafter:\n    - {error: bad_request}\n",
    )
    paused = start(cli, path, "e1")
    review = paused.json["errors"][0]["review"]
    assert (review["kind"], review["source"], review["schema"]) == (
        "escalation",
        "drafter",
        "Draft",
    )
    assert "HTTP 400" in review["reason"]
    done = cli("resume", "e1", "--edit", '{"text": "written by hand", "confidence": 1}', "--json")
    assert done.code == 0, done.stderr
    assert done.json["output"]["text"] == "written by hand"
    assert done.json["path"] == ["drafter", "sender"]  # the person answered for drafter
