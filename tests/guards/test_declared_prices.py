"""A declared price (``models.NAME.price``) is what the meter charges: a cost budget on
it trips where its arithmetic says, and the ledger records that cost."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from corral import load_team
from corral.models import Price, price

TEAM = """\
version: 1
name: priced
models:
  default:
    use: scripted
    script: script.yaml
    price: {{input_per_mtok: 1000000, output_per_mtok: 2000000}}
schemas:
  Question: {{fields: {{text: str}}}}
  Answer: {{fields: {{text: str, score: {{type: int, ge: 0, le: 10}}}}}}
agents:
  - id: solver
    role: Solver
    budget: {{max_output_tokens: 100{cost}}}
flow:
  entry: solver
  input: Question
  output: Answer
  edges: [{{from: solver, to: END, schema: Answer}}]
"""
QUESTION = {"text": "what is the answer to everything?"}


def _usage(db: Path) -> list[tuple[str, int, int, float | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT status, input_tokens, output_tokens, cost_usd FROM usage ORDER BY id"
        ).fetchall()


def test_a_declared_price_makes_a_cost_budget_trip_where_its_arithmetic_says(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("script.yaml", "replies: []\n")
    probe = load_team(write("team.yaml", TEAM.format(cost="")))
    with probe.compile(db=tmp_path / "probe.db") as app:
        first = app.run(QUESTION)
    ((_, used_in, used_out, cost),) = _usage(tmp_path / "probe.db")
    assert cost == pytest.approx(used_in * 1.0 + used_out * 2.0)  # $1 and $2 a token
    assert first.cost_usd == pytest.approx(cost)
    # Two calls fit; the third's reservation (its input plus 100 output tokens) does not.
    limit = 2 * cost + used_in + 2.0 * 100 - 1
    team = load_team(write("team.yaml", TEAM.format(cost=f", daily_cost_usd: {limit}")))
    with team.compile(db=tmp_path / "w.db") as app:
        results = [app.run(QUESTION) for _ in range(3)]
    assert [r.status for r in results] == ["completed", "completed", "halted"]
    trip = results[2].errors[0].to_dict()
    assert (trip["layer"], trip["limit"]) == ("daily_cost_usd", limit)
    assert trip["used"] == pytest.approx(2 * cost)
    settled = [row for row in _usage(tmp_path / "w.db") if row[0] == "settled"]
    assert [row[3] for row in settled] == pytest.approx([cost, cost])


def test_a_declared_price_charges_cached_input_at_its_own_rate() -> None:
    declared = Price(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)
    # 1M input of which 400k from cache, 100k output.
    assert price("openai:gpt-4o", 1_000_000, 100_000, 400_000, declared=declared) == (
        pytest.approx(600_000 * 2.0 / 1e6 + 400_000 * 0.5 / 1e6 + 100_000 * 8.0 / 1e6)
    )
    no_cache_rate = Price(input_per_mtok=2.0, output_per_mtok=8.0)
    assert price("x:y", 1_000_000, 0, 400_000, declared=no_cache_rate) == pytest.approx(2.0)
    assert price("openai:my-local-llama", 10, 10) is None  # unknown without a declared price
