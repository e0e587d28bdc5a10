"""Runs pinned to their team: a resume under a changed team file goes on under compatible
changes and is refused, with the diff, under incompatible ones unless --migrate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from corral.workspace import open_workspace
from tests.conftest import Cli

CliRunner = Callable[..., Cli]
Write = Callable[..., Path]

TEAM = """\
version: 1
name: pinned
models:
  default: {use: scripted, script: script.yaml}
schemas:
  Question: {fields: {text: str}}
  Draft: {fields: {text: str}}
agents:
  - {id: drafter, role: Drafter, instructions: Draft a reply.}
  - {id: sender, role: Sender}
  - {id: archiver, role: Archiver}
flow:
  entry: drafter
  input: Question
  output: Draft
  edges:
    - {from: drafter, to: archiver, schema: Draft, when: {field: text, equals: skip}}
    - {from: drafter, to: sender, schema: Draft, review: true}
    - {from: sender, to: archiver, schema: Draft, when: {field: text, equals: archive}}
    - {from: sender, to: END, schema: Draft}
    - {from: archiver, to: END, schema: Draft}
"""

CHANGES = {
    "instructions": (
        "instructions: Draft a reply.",
        "instructions: Draft a short reply.",
        '~ agents.drafter.instructions: "Draft a reply." -> "Draft a short reply." (compatible)',
    ),
    "schema field": (
        "Draft: {fields: {text: str}}",
        "Draft: {fields: {text: str, note: {type: str, default: ''}}}",
        "+ schemas.Draft.fields.note",
    ),
    "edge": (
        "    - {from: drafter, to: archiver, schema: Draft, when: {field: text, equals: skip}}\n",
        "",
        "- flow.edges[drafter -> archiver] (incompatible)",
    ),
    "agent": (
        "  - {id: archiver, role: Archiver}\n",
        "",
        "- agents.archiver (incompatible)",
    ),
}


def paused(cli: CliRunner, write: Write, run_id: str) -> Path:
    write("script.yaml", "replies: []\n")
    path = write("team.yaml", TEAM)
    started = cli("run", path, "--input", '{"text": "hello"}', "--run-id", run_id)
    assert started.code == 4, started.stderr
    return path


def changed(path: Path, kind: str) -> None:
    old, new, _ = CHANGES[kind]
    text = path.read_text()
    if kind == "agent":  # the agent and every edge to or from it
        text = "".join(line for line in text.splitlines(True) if "archiver" not in line)
    assert old in text or kind == "agent"
    path.write_text(text.replace(old, new))


def team_events(tmp_path: Path, run_id: str) -> list[dict[str, object]]:
    workspace = open_workspace(tmp_path / ".corral" / "corral.db")
    try:
        return workspace.events.list(run_id, "team_changed")
    finally:
        workspace.close()


def test_a_compatible_change_goes_on_and_is_recorded(
    cli: CliRunner, write: Write, tmp_path: Path
) -> None:
    path = paused(cli, write, "r1")
    changed(path, "instructions")
    done = cli("resume", "r1", "--approve", "--json")
    assert done.code == 0, done.stderr
    assert "the team changed since run r1 started (compatible)" in done.stderr
    assert CHANGES["instructions"][2] in done.stderr
    [event] = team_events(tmp_path, "r1")
    assert event["migrated"] is False
    assert [c["where"] for c in event["changes"]] == ["agents.drafter.instructions"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["schema field", "edge", "agent"])
def test_an_incompatible_change_is_refused_with_the_diff_unless_migrated(
    cli: CliRunner, write: Write, tmp_path: Path, kind: str
) -> None:
    path = paused(cli, write, "r1")
    changed(path, kind)
    refused = cli("resume", "r1", "--approve")
    assert refused.code == 2
    assert "Traceback" not in refused.stderr
    assert "the team changed since run 'r1' started, in ways it cannot go on under" in (
        refused.stderr
    )
    assert CHANGES[kind][2] in refused.stderr
    assert "--migrate" in refused.stderr
    assert team_events(tmp_path, "r1") == []
    assert [r["run_id"] for r in cli("runs", "--pending", "--json").json] == ["r1"]

    migrated = cli("resume", "r1", "--approve", "--migrate", "--json")
    assert migrated.code == 0, migrated.stderr
    assert migrated.json["path"] == ["drafter", "sender"]
    assert "(migrating)" in migrated.stderr
    [event] = team_events(tmp_path, "r1")
    assert event["migrated"] is True


def test_diff_prints_each_change_and_says_which_are_compatible(
    cli: CliRunner, write: Write
) -> None:
    write("script.yaml", "replies: []\n")
    old = write("old.yaml", TEAM)
    new = write(
        "new.yaml",
        TEAM.replace("Draft a reply.", "Draft a short reply.").replace(CHANGES["edge"][0], ""),
    )
    shown = cli("diff", old, new)
    assert shown.code == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        CHANGES["instructions"][2],
        CHANGES["edge"][2],
        f"1 incompatible change: runs started under {old} resume under {new} only with --migrate",
    ]
    same = cli("diff", old, old)
    assert same.stdout.strip() == "no changes"


def test_batch_resume_settles_expired_reviews_and_approves_the_rest(
    cli: CliRunner, write: Write
) -> None:
    write("script.yaml", "replies: []\n")
    soon = write("soon.yaml", TEAM.replace("review: true", "review: {timeout_seconds: 0.001}"))
    later = write(
        "later.yaml",
        TEAM.replace("name: pinned", "name: later").replace(
            "review: true", "review: {timeout_seconds: 3600, on_timeout: approve}"
        ),
    )
    for path, run_id in ((soon, "expired"), (later, "waiting")):
        started = cli("run", path, "--input", '{"text": "hello"}', "--run-id", run_id)
        assert started.code == 4, started.stderr
    listed = {r["run_id"]: r for r in cli("runs", "--pending", "--json").json}
    assert listed["expired"]["on_timeout"] == "reject"
    assert listed["waiting"]["on_timeout"] == "approve"
    assert listed["waiting"]["deadline"] > listed["expired"]["deadline"]

    settled = cli("resume", "--expired")
    assert settled.code == 0, settled.stderr
    assert sorted(settled.stdout.splitlines()) == [
        "expired: reject (deadline passed) -> failed",
        f"waiting: left waiting (deadline {listed['waiting']['deadline']})",
    ]
    approved = cli("resume", "--approve-all")
    assert approved.stdout.splitlines() == ["waiting: approve -> completed"]
    assert cli("runs", "--pending", "--json").json == []


def test_batch_resume_goes_on_past_a_run_whose_team_file_is_gone(
    cli: CliRunner, write: Write
) -> None:
    write("script.yaml", "replies: []\n")
    gone = write("gone.yaml", TEAM.replace("name: pinned", "name: gone"))
    kept = write("kept.yaml", TEAM)
    for path, run_id in ((gone, "g1"), (kept, "k1")):
        started = cli("run", path, "--input", '{"text": "hello"}', "--run-id", run_id)
        assert started.code == 4, started.stderr
    gone.unlink()
    approved = cli("resume", "--approve-all")
    assert approved.code == 0, approved.stderr
    assert approved.stdout.splitlines() == [
        "k1: approve -> completed",
        f"g1: left waiting (team file {gone} cannot be read; pass --team)",
    ]
    assert [r["run_id"] for r in cli("runs", "--pending", "--json").json] == ["g1"]
