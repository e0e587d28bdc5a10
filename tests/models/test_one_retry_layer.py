"""One retry layer: a model corral builds has its SDK's own retries off, so every 429 is
seen, retried, recorded and counted by corral, and the server gets exactly the requests
corral made. A model given in Python that retries inside its SDK is warned about, once.
The api key of the built model comes from ``${NAME}`` and is never stored. Real
``ChatOpenAI`` clients against an OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import sqlite3
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from langchain_openai import ChatOpenAI

from corral import ModelCall, RunFinished, SDKRetriesWarning, load_team
from corral.models import price
from tests.models.test_openai_client import Server, Throttling

TEAM = """\
version: 1
name: throttled
models:
  default:
    use: openai:gpt-4o-mini
    params: {{base_url: "{url}", api_key: "${{CORRAL_TEST_API_KEY}}"}}
    price: {{input_per_mtok: 10, output_per_mtok: 20}}
schemas:
  Question: {{fields: {{text: str}}}}
  Answer: {{fields: {{text: str, score: int}}}}
agents:
  - id: solver
    role: Solver
    budget: {{max_output_tokens: 50, daily_cost_usd: 1}}
flow:
  entry: solver
  input: Question
  output: Answer
  edges: [{{from: solver, to: END, schema: Answer}}]
guards: {{retry: {{max_attempts: 4, initial_interval: 0.01, jitter: false}}}}
trace: {{content: full}}
"""


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def _workspace_text(db: Path) -> str:
    """Every row of every table of the workspace file, as text."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [repr(row) for table in tables for row in conn.execute(f'SELECT * FROM "{table}"')]
    assert tables  # the search below searched something
    assert rows
    return "\n".join(rows)


def test_a_built_model_retries_only_through_corral_and_its_secret_is_never_stored(
    write: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = f"sk-corral-{uuid.uuid4().hex}"
    monkeypatch.setenv("CORRAL_TEST_API_KEY", secret)
    server = Throttling(limit=2, wait=0.01)
    try:
        team = load_team(write("team.yaml", TEAM.format(url=server.url)))
        db = tmp_path / "w.db"
        with caplog.at_level("DEBUG"), team.compile(db=db) as app:
            events = list(app.stream({"text": "question"}))
            run_id = events[0].run_id
            trace = app.trace(run_id)
            failures = [e["then"] for e in app.events.list(run_id, "failure")]
            metrics = app.metrics.text().decode()
    finally:
        server.httpd.shutdown()
    assert isinstance(events[-1], RunFinished)
    assert events[-1].status == "completed"
    # The SDK retried nothing: the server saw exactly corral's three attempts.
    calls = [e for e in events if isinstance(e, ModelCall)]
    assert [c.status for c in calls] == ["error", "error", "ok"]
    assert calls[0].error is not None
    assert calls[0].error.startswith("OpenAIRateLimitError: Error code: 429")
    assert len(server.times) == len(calls) == 3
    assert failures == ["retry in 0.010 s", "retry in 0.020 s"]  # corral's backoff
    assert len(trace.of("failure")) == 2
    assert 'corral_llm_call_errors_total{agent="solver",error="OpenAIRateLimitError"' in metrics
    assert "} 2.0" in next(
        line for line in metrics.splitlines() if line.startswith("corral_llm_call_errors_total{")
    )
    assert calls[-1].cost_usd == pytest.approx((1000 * 10 + 200 * 20) / 1e6)  # declared
    # The key reached the server, and nothing corral keeps.
    assert server.headers[-1]["authorization"] == f"Bearer {secret}"
    assert secret not in _workspace_text(db)
    for path in tmp_path.glob("w.db*"):
        assert secret.encode() not in path.read_bytes()
    assert secret not in json.dumps([e.to_dict() for e in trace], default=str)
    assert secret not in json.dumps([e.model_dump(mode="json") for e in events])
    assert secret not in caplog.text
    assert secret not in repr(team.plan.models) + team.model_dump_json()
    assert "${CORRAL_TEST_API_KEY}" in team.model_dump_json()


def test_a_declared_price_overrides_genai_prices_for_a_known_model(
    write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORRAL_TEST_API_KEY", "sk-test")
    server = Server()
    try:
        team = load_team(write("team.yaml", TEAM.format(url=server.url)))
        with team.compile(db=tmp_path / "w.db") as app:
            result = app.run({"text": "question"})
    finally:
        server.httpd.shutdown()
    known = price("openai:gpt-4o-mini-2024-07-18", 1000, 200)
    assert known is not None  # genai-prices knows this model ...
    assert result.cost_usd == pytest.approx((1000 * 10 + 200 * 20) / 1e6)  # ... the team wins
    assert result.cost_usd != pytest.approx(known)


def test_a_python_model_retrying_inside_its_sdk_is_warned_about_once(
    write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORRAL_TEST_API_KEY", "sk-test")
    team = load_team(write("team.yaml", TEAM.format(url="http://127.0.0.1:9/v1")))

    def client(retries: int | None) -> ChatOpenAI:
        extra = {} if retries is None else {"max_retries": retries}
        return ChatOpenAI(
            model="gpt-4o-mini",
            base_url="http://127.0.0.1:9/v1",
            api_key="sk-test",  # type: ignore[arg-type]
            http_client=httpx.Client(trust_env=False),
            **extra,  # type: ignore[arg-type]
        )

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with team.compile(db=tmp_path / "a.db", chat_models={"default": client(2)}):
            pass
        retrying = [w for w in seen if issubclass(w.category, SDKRetriesWarning)]
        assert len(retrying) == 1
        assert "'default' (ChatOpenAI) retries failed calls 2 times" in str(retrying[0].message)
        assert "max_retries=0" in str(retrying[0].message)
        seen.clear()
        with team.compile(db=tmp_path / "b.db", chat_models={"default": client(None)}):
            pass  # unset: the openai SDK's own default of 2 retries
        assert len([w for w in seen if issubclass(w.category, SDKRetriesWarning)]) == 1
        seen.clear()
        with team.compile(db=tmp_path / "c.db", chat_models={"default": client(0)}):
            pass
        assert not [w for w in seen if issubclass(w.category, SDKRetriesWarning)]
