"""A real provider client (langchain-openai) against an OpenAI-compatible server on loopback:
the usage its responses report lands in the ledger, is priced, and is enforced."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_openai import ChatOpenAI

from corral import load_team

TEAM = """\
version: 1
name: priced
schemas:
  Question: {fields: {text: str}}
  Answer: {fields: {text: str, score: int}}
agents:
  - id: solver
    role: Solver
    budget: {max_output_tokens: 50, daily_tokens: 2450}
flow:
  entry: solver
  input: Question
  output: Answer
  edges: [{from: solver, to: END, schema: Answer}]
"""


def completion(model: str, content: str, prompt: int, answer: int) -> dict[str, Any]:
    """An OpenAI chat completion saying ``content``, with its token usage."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": answer,
            "total_tokens": prompt + answer,
        },
    }


def send(handler: Any, status: int, body: Any, **headers: str) -> None:
    """Answer a request with ``body`` as JSON."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    for name, value in {**headers, "Content-Type": "application/json"}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class Server:
    """A minimal OpenAI chat-completions endpoint that records what it was sent."""

    def __init__(self, model: str = "gpt-4o-mini-2024-07-18") -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.model = model
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                content = json.dumps({"text": "forty-two", "score": 7})
                send(self, 200, completion(outer.model, content, 1000, 200))

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.httpd.shutdown()


def test_real_client_usage_is_metered_priced_and_enforced(
    server: Server, write: Callable[..., Path], tmp_path: Path
) -> None:
    client = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=server.url,
        api_key="sk-test",  # type: ignore[arg-type]
        max_retries=0,
        http_client=httpx.Client(trust_env=False),
    )
    team = load_team(write("team.yaml", TEAM))
    with team.compile(db=tmp_path / "w.db", chat_models={"default": client}) as app:
        first, second, third = (app.run({"text": "question"}) for _ in range(3))
        report = app.ledger.report(app.ledger.day())
    assert first.ok
    assert second.ok
    assert first.output == {"text": "forty-two", "score": 7}
    assert first.usage["input_tokens"] == 1000  # what the server reported
    assert first.usage["output_tokens"] == 200
    assert first.cost_usd is not None
    assert first.cost_usd > 0  # priced from genai-prices' offline data
    # 2 x 1,200 reported tokens are spent; the third call's reservation (its prompt plus
    # its 50 output tokens) does not fit the 50 left of 2,450.
    assert third.status == "halted"
    assert (third.errors[0].layer, third.errors[0].used) == ("daily_tokens", 2400)
    assert len(server.requests) == 2  # the refused call never reached the server
    assert (
        server.requests[0].get("max_tokens", server.requests[0].get("max_completion_tokens")) == 50
    )  # the per-call output bound reached the provider
    solver = next(line for line in report if line["agent"] == "solver")
    assert (solver["calls"], solver["tokens"], solver["token_limit"]) == (2, 2400, 2450)
    assert solver["cost_usd"] == pytest.approx(2 * first.cost_usd)


def test_an_unknown_price_is_recorded_as_unknown_never_invented(
    write: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mystery = Server(model="mystery-model-9000")
    try:
        client = ChatOpenAI(
            model="mystery-model-9000",
            base_url=mystery.url,  # type: ignore[arg-type]
            api_key="sk-test",
            max_retries=0,  # type: ignore[arg-type]
            http_client=httpx.Client(trust_env=False),
        )
        team = load_team(write("team.yaml", TEAM))
        with (
            caplog.at_level("WARNING", logger="corral.budget"),
            team.compile(db=tmp_path / "w.db", chat_models={"default": client}) as app,
        ):
            result = app.run({"text": "question"})
            report = app.ledger.report(app.ledger.day())
    finally:
        mystery.httpd.shutdown()
    assert result.ok
    assert result.usage["input_tokens"] == 1000
    assert result.cost_usd is None
    assert next(line for line in report if line["agent"] == "solver")["cost_usd"] is None
    assert any(
        "no price known for model 'openai:mystery-model-9000'" in r.message for r in caplog.records
    )


class Throttling(Server):
    """Answers 429 with Retry-After the first ``limit`` times, then like ``Server``."""

    def __init__(self, limit: int, wait: float) -> None:
        super().__init__()
        self.times: list[float] = []
        answer = self.httpd.RequestHandlerClass.do_POST  # type: ignore[attr-defined]
        outer = self

        def do_post(handler: Any) -> None:
            import time

            outer.times.append(time.monotonic())
            if len(outer.times) <= limit:
                handler.rfile.read(int(handler.headers["Content-Length"]))
                error = {"error": {"message": "slow down", "type": "rate_limit"}}
                send(handler, 429, error, **{"Retry-After": str(wait)})
                return
            answer(handler)

        self.httpd.RequestHandlerClass.do_POST = do_post  # type: ignore[attr-defined]


def test_real_client_429_with_retry_after_then_success(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    server = Throttling(limit=2, wait=0.3)
    try:
        client = ChatOpenAI(
            model="gpt-4o-mini",
            base_url=server.url,
            api_key="sk-test",  # type: ignore[arg-type]
            max_retries=0,
            http_client=httpx.Client(trust_env=False),
        )
        text = TEAM.replace("guards", "x") + (
            "guards: {retry: {max_attempts: 4, initial_interval: 0.01, jitter: false}}\n"
        )
        team = load_team(write("team.yaml", text))
        with team.compile(db=tmp_path / "w.db", chat_models={"default": client}) as app:
            result = app.run({"text": "question"})
            waits = [e["then"] for e in app.events.list(result.run_id, "failure")]
    finally:
        server.httpd.shutdown()
    assert result.status == "completed"
    assert result.output == {"text": "forty-two", "score": 7}
    assert len(server.times) == 3
    gaps = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert all(gap >= 0.3 for gap in gaps), gaps  # Retry-After honoured over the backoff
    assert waits == ["retry in 0.300 s", "retry in 0.300 s"]


class Failing(Server):
    """Answers ``good`` times, then once with text that is not the JSON asked for, then
    only HTTP 500."""

    def __init__(self, good: int) -> None:
        super().__init__()
        answer = self.httpd.RequestHandlerClass.do_POST  # type: ignore[attr-defined]
        outer = self
        self.seen = 0

        def do_post(handler: Any) -> None:
            outer.seen += 1
            if outer.seen <= good:
                answer(handler)
                return
            handler.rfile.read(int(handler.headers["Content-Length"]))
            status, body = 500, {"error": {"message": "boom", "type": "server_error"}}
            if outer.seen == good + 1:
                status, body = 200, completion(outer.model, "not JSON", 300, 40)
            send(handler, status, body)

        self.httpd.RequestHandlerClass.do_POST = do_post  # type: ignore[attr-defined]


def test_a_failed_real_client_run_reports_every_call_the_ledger_holds(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    server = Failing(good=1)
    two = """\
version: 1
name: checked
schemas:
  Question: {fields: {text: str}}
  Answer: {fields: {text: str, score: int}}
agents:
  - {id: solver, role: Solver}
  - {id: checker, role: Checker, tools: [lookup]}
tools:
  lookup: {import: "lookup:lookup"}
flow:
  entry: solver
  input: Question
  output: Answer
  edges:
    - {from: solver, to: checker, schema: Answer}
    - {from: checker, to: END, schema: Answer}
guards: {retry: {max_attempts: 2, initial_interval: 0.01, jitter: false}}
"""
    try:
        client = ChatOpenAI(
            model="gpt-4o-mini",
            base_url=server.url,
            api_key="sk-test",  # type: ignore[arg-type]
            max_retries=0,
            http_client=httpx.Client(trust_env=False),
        )
        write("lookup.py", 'def lookup(key: str) -> str:\n    """A key."""\n    return key\n')
        team = load_team(write("team.yaml", two))
        with team.compile(db=tmp_path / "w.db", chat_models={"default": client}) as app:
            result = app.run({"text": "question"})
            traced = app.trace(result.run_id).usage
            listed = next(r for r in app.list_runs() if r.run_id == result.run_id).usage
            report = app.ledger.report(app.ledger.day())
    finally:
        server.httpd.shutdown()
    assert result.status == "failed", result.errors
    assert server.seen == 4  # an answer, a tool call, then server errors (tried twice)
    # the solver's answer and the checker's tool call, though the checker's node failed
    account = {"input_tokens": 1300, "output_tokens": 240, "llm_calls": 2}
    assert result.usage == account
    assert result.cost_usd is not None
    assert result.cost_usd > 0
    assert result.to_dict()["usage"] == traced == listed == {**account, "cost_usd": result.cost_usd}
    team_line = next(line for line in report if line["agent"] == "team")
    assert (team_line["calls"], team_line["tokens"]) == (2, 1540)  # `corral budget` agrees
    assert team_line["cost_usd"] == pytest.approx(result.cost_usd)
