"""End to end on Postgres: `corral run --db postgresql://...` in a subprocess completes,
and `corral runs`, `corral runs show` and `corral budget` read the run back from the
database; a team file's `checkpoint.db:` may name the database too."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli

EXAMPLE = Path(__file__).parents[2] / "examples" / "support_desk"


def test_a_run_on_postgres_completes_and_every_reader_finds_it(
    postgres_url: str, cli: Callable[..., Cli], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = cli(
        "run", EXAMPLE / "team.yaml", "--input", f"@{EXAMPLE / 'ticket.json'}",
        "--db", postgres_url, "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    result = ran.json
    assert result["status"] == "completed"
    assert result["path"][0] == "intake"
    assert result["path"][-1] == "writer"
    assert f"workspace: {postgres_url} (--db)" in ran.stderr
    assert not (tmp_path / ".corral").exists()  # nothing went to a SQLite file

    listed = cli("runs", "--db", postgres_url, "--json")
    assert listed.code == 0, listed.stderr
    assert [(r["run_id"], r["status"]) for r in listed.json] == [(result["run_id"], "completed")]
    assert listed.json[0]["usage"] == result["usage"]

    shown = cli("runs", "show", result["run_id"], "--db", postgres_url, "--json")
    assert shown.code == 0, shown.stderr
    kinds = [e["kind"] for e in shown.json]
    assert kinds.count("llm_call") == result["usage"]["llm_calls"] > 0
    assert [e["agent"] for e in shown.json if e["kind"] == "step"] == result["path"]

    monkeypatch.setenv("CORRAL_DB", postgres_url)  # the environment names it just as well
    from_env = cli("runs", "--json")
    assert [r["run_id"] for r in from_env.json] == [result["run_id"]]
    assert "($CORRAL_DB)" in from_env.stderr

    budget = cli("budget", "--db", postgres_url, "--json")
    assert budget.code == 0, budget.stderr
    team = budget.json["team"]
    usage = result["usage"]
    assert (team["calls"], team["tokens"]) == (
        usage["llm_calls"],
        usage["input_tokens"] + usage["output_tokens"],
    )


def test_the_team_files_checkpoint_db_may_be_a_postgres_url(
    postgres_url: str, cli: Callable[..., Cli], tmp_path: Path
) -> None:
    team = tmp_path / "team"
    shutil.copytree(EXAMPLE, team)
    text = (team / "team.yaml").read_text(encoding="utf-8")
    assert "checkpoint:" not in text  # the example sets none: this test adds it
    (team / "team.yaml").write_text(text + f"\ncheckpoint:\n  db: {postgres_url}\n", "utf-8")
    ran = cli("run", team / "team.yaml", "--input", f"@{team / 'ticket.json'}", "--json")
    assert ran.code == 0, ran.stderr
    assert "checkpoint.db of the team file" in ran.stderr
    listed = cli("runs", "--team", team / "team.yaml", "--json")
    assert [r["run_id"] for r in listed.json] == [ran.json["run_id"]]


def test_an_unreachable_database_is_a_clear_error(cli: Callable[..., Cli]) -> None:
    failed = cli("runs", "--db", "postgresql://corral:secret@127.0.0.1:1/none")
    assert failed.code == 2
    assert "cannot connect to the Postgres workspace" in failed.stderr
    assert "secret" not in failed.stderr
    assert "Traceback" not in failed.stderr
