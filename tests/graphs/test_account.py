"""One account: whatever a run's status, its result, ``--json``, ``corral runs``, its trace
and the metrics all report the usage and cost of the run's settled ledger rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from corral import RunResult, load_team
from tests.conftest import run_cli

TEAM = """\
version: 1
name: {name}
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Question: {{fields: {{text: str}}}}
  Answer: {{fields: {{text: str, score: int}}}}
agents:
  - {{id: first, role: Drafter}}
  - {{id: second, role: Checker{budget}}}
flow:
  entry: first
  input: Question
  output: Answer
  edges:
    - {{from: first, to: second, schema: Answer{review}}}
    - {{from: second, to: END, schema: Answer}}
guards:
  retry: {{max_attempts: 2, initial_interval: 0.01, jitter: false}}
"""
BAD = '    - {raw: "not JSON"}\n'
CASES: dict[str, tuple[str, str, str]] = {
    # status: (script, second's budget, review on the first edge)
    "completed": ("agents:\n  first:\n" + BAD + "then: auto\n", "", ""),
    # second answers badly once (a settled call), then fails for good: its node never
    # hands its usage on, but the ledger holds the call
    "failed": ("agents:\n  second:\n" + BAD + "    - {error: bad_request}\nthen: auto\n", "", ""),
    # second's retry is refused by its budget after one settled call: halted
    "halted": ("agents:\n  second:\n" + BAD + "then: auto\n", ", budget: {max_task_calls: 1}", ""),
    "paused": ("agents:\n  first:\n" + BAD + "then: auto\n", "", ", review: true"),
}


def ledger(db: Path, run_id: str) -> dict[str, Any]:
    """The run's settled ledger rows, summed here with plain SQL."""
    with sqlite3.connect(db) as conn:
        tokens_in, tokens_out, calls, cost = conn.execute(
            "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), count(*), "
            "COALESCE(SUM(cost_usd), 0) FROM usage WHERE run_id = ? AND status = 'settled'",
            (run_id,),
        ).fetchone()
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "llm_calls": calls,
        "cost_usd": cost,
    }


def metered(app: Any) -> dict[str, Any]:
    """What the app's metrics counted (one run per app here)."""
    registry = app.metrics.registry

    def total(name: str, **labels: str) -> float:
        return sum(
            s.value
            for m in registry.collect()
            for s in m.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    return {
        "input_tokens": total("corral_llm_tokens_total", type="input"),
        "output_tokens": total("corral_llm_tokens_total", type="output"),
        "llm_calls": total("corral_llm_calls_total"),
        "cost_usd": total("corral_llm_cost_usd_total"),
    }


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[RunResult, Any]]]:
    """One workspace holding a run of every status; each result with its trace and metrics."""
    root = tmp_path_factory.mktemp("account")
    db = root / "w.db"
    found: dict[str, tuple[RunResult, Any]] = {}
    for status, (script, budget, review) in CASES.items():
        folder = root / status
        folder.mkdir()
        (folder / "script.yaml").write_text(script)
        team_file = folder / "team.yaml"
        team_file.write_text(TEAM.format(name=status, budget=budget, review=review))
        with load_team(team_file).compile(db=db) as app:
            result = app.run({"text": "question"})
            found[status] = (result, (app.trace(result.run_id).usage, metered(app)))
    return db, found


@pytest.mark.parametrize("status", list(CASES))
def test_every_report_of_a_run_is_its_ledger(
    status: str, ran: tuple[Path, dict[str, tuple[RunResult, Any]]]
) -> None:
    db, found = ran
    result, (traced, metrics) = found[status]
    assert result.status == status, result.errors
    account = ledger(db, result.run_id)
    assert account["llm_calls"] >= 2  # the run made calls before it ended
    assert result.to_dict()["usage"] == account
    assert {**result.usage, "cost_usd": result.cost_usd} == account
    assert traced == account
    assert metrics == account
    listed = run_cli("runs", "--db", db, "--json", cwd=db.parent)
    assert listed.code == 0, listed.stderr
    assert next(r for r in listed.json if r["run_id"] == result.run_id)["usage"] == account


def test_the_failed_node_s_calls_are_counted(
    ran: tuple[Path, dict[str, tuple[RunResult, Any]]],
) -> None:
    db, found = ran
    failed, _ = found["failed"]
    # first's answer, and second's bad answer before its node failed (the old count: 1)
    assert failed.usage["llm_calls"] == 2
    assert ledger(db, failed.run_id)["llm_calls"] == 2


def test_the_trace_shows_the_account(ran: tuple[Path, dict[str, tuple[RunResult, Any]]]) -> None:
    db, found = ran
    halted, _ = found["halted"]
    shown = run_cli("runs", "show", halted.run_id, "--db", db, cwd=db.parent)
    assert shown.code == 0, shown.stderr
    u = halted.usage
    assert (
        f"{u['llm_calls']} model calls, {u['input_tokens']} input + "
        f"{u['output_tokens']} output tokens, cost 0.0000 USD"
    ) in shown.stdout
