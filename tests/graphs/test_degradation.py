"""Graceful degradation: retries, timeouts, fallbacks, breakers, escalation, review."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral import ScriptedChatModel, load_team
from tests.conftest import SeenMessages

TEAM = """\
version: 1
name: fragile
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Question: {{fields: {{text: str}}}}
  Answer: {{fields: {{text: str, confidence: {{type: float, ge: 0, le: 1}}}}}}
agents:
  - id: solver
    role: Solver
{extra}
  - id: reporter
    kind: function
    function: "rules:report"
flow:
  entry: solver
  input: Question
  output: Answer
  edges:
    - {{from: solver, to: reporter, schema: Answer{edge}}}
    - {{from: reporter, to: END, schema: Answer}}
guards:
  retry: {{max_attempts: 3, initial_interval: 0.01, backoff_factor: 2, jitter: false{timeout}}}
{guards}
"""
RULES = """\
def report(answer):
    return answer


def simple(question):
    return {"text": "fallback: " + question.text, "confidence": 0.5}
"""


def fragile(
    write: Callable[..., Path],
    script: str,
    *,
    extra: str = "",
    edge: str = "",
    guards: str = "",
    timeout: str = "",
) -> Any:
    write("rules.py", RULES)
    write("script.yaml", script)
    return load_team(
        write("team.yaml", TEAM.format(extra=extra, edge=edge, guards=guards, timeout=timeout))
    )


def failures(app: Any, run_id: str) -> list[tuple[int, str, str]]:
    return [
        (e["attempt"], e["error"], e["then"].split(" in ")[0])
        for e in app.events.list(run_id, "failure")
    ]


def test_rate_limit_storm_is_retried_within_the_attempts(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    storm = "agents:\n  solver:\n    - {error: rate_limit}\n    - {error: server}\n"
    seen = SeenMessages()
    with fragile(write, storm).compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"}, config={"callbacks": [seen]})
        trail = failures(app, result.run_id)
        waits = [float(e["then"].split()[2]) for e in app.events.list(result.run_id, "failure")]
    assert result.status == "completed"
    assert trail == [(1, "ScriptedProviderError", "retry"), (2, "ScriptedProviderError", "retry")]
    assert waits == [0.01, 0.02]  # exponential backoff
    assert len(seen.calls) == 3


def test_a_longer_storm_gives_up_at_the_maximum(write: Callable[..., Path], tmp_path: Path) -> None:
    storm = "agents:\n  solver:\n" + "    - {error: rate_limit}\n" * 5
    seen = SeenMessages()
    with fragile(write, storm).compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"}, config={"callbacks": [seen]})
        trail = failures(app, result.run_id)
    assert result.status == "failed"
    assert len(seen.calls) == 3  # never more attempts than configured
    assert [t[2] for t in trail] == ["retry", "retry", "give up", "escalate"]
    assert "after 3 attempts" in result.errors[0].message


def test_client_errors_are_not_retried(write: Callable[..., Path], tmp_path: Path) -> None:
    seen = SeenMessages()
    with fragile(write, "agents:\n  solver:\n    - {error: bad_request}\n").compile(
        db=tmp_path / "w.db"
    ) as app:
        result = app.run({"text": "q"}, config={"callbacks": [seen]})
    assert result.status == "failed"
    assert len(seen.calls) == 1
    assert "not retryable" in result.errors[0].message


def test_timeouts_real_and_reported_are_retried(write: Callable[..., Path], tmp_path: Path) -> None:
    script = "agents:\n  solver:\n    - {auto: true, delay: 1.0}\n    - {error: timeout}\n"
    with fragile(write, script, timeout=", timeout: 0.2").compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"})
        trail = failures(app, result.run_id)
    assert result.status == "completed"
    assert [t[1] for t in trail] == ["CallTimeout", "ScriptedTimeoutError"]


def test_garbage_output_falls_back_to_a_simpler_answer_flagged_degraded(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    garbage = "agents:\n  solver:\n" + "    - {raw: 'not json at all'}\n" * 3
    extra = "    fallback: {function: 'rules:simple'}"
    with fragile(write, garbage, extra=extra).compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"})
        state = app.graph.get_state(app.config(result.run_id)).values
        trail = failures(app, result.run_id)
    assert result.status == "completed"
    assert result.output == {"text": "fallback: q", "confidence": 0.5}
    assert trail == [(0, "HandoffError", "fallback")]
    assert state["_path"] == ["solver", "reporter"]


def test_fallback_model_answers_when_the_agent_keeps_failing(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    script = "agents:\n  solver:\n" + "    - {error: server}\n" * 3
    extra = "    model: flaky\n    fallback: {model: steady}"
    text = TEAM.replace(
        "  default: {{use: scripted, script: script.yaml}}",
        "  flaky: {{use: scripted, script: script.yaml}}\n  steady: scripted",
    )
    write("rules.py", RULES)
    write("script.yaml", script)
    team = load_team(write("team.yaml", text.format(extra=extra, edge="", guards="", timeout="")))
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"})
    assert result.status == "completed"
    assert result.usage["llm_calls"] == 1  # the steady model's one answer


def test_low_confidence_waits_for_a_person(write: Callable[..., Path], tmp_path: Path) -> None:
    low = "agents:\n  solver:\n    - output: {text: maybe, confidence: 0.2}\n"
    with fragile(write, low, edge=", min_confidence: 0.6").compile(db=tmp_path / "w.db") as app:
        paused = app.run({"text": "q"}, run_id="low")
        waiting = app.pending()
        state = app.graph.get_state(app.config("low")).values
        assert paused.status == "paused"
        assert paused.errors[0].to_dict()["type"] == "ReviewPending"
        assert waiting[0]["kind"] == "confidence"
        assert waiting[0]["payload"] == {"text": "maybe", "confidence": 0.2}
        assert state["_path"] == ["solver"]  # the reporter has not seen it
        assert state.get("_handoff") is None  # nothing handed on yet
        done = app.resume("low", approve=True)
    assert done.status == "completed"
    assert done.output == {"text": "maybe", "confidence": 0.2}


def test_circuit_breaker_opens_skips_the_agent_and_closes_after_a_probe(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    class Clock:
        now = 1_000_000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    script = "agents:\n  solver:\n" + "    - {error: bad_request}\n" * 2 + "then: auto\n"
    extra = "    fallback: {function: 'rules:simple'}"
    guards = "  breaker: {failures: 2, window_seconds: 60, cooldown_seconds: 30}"
    seen = SeenMessages()
    team = fragile(write, script, extra=extra, guards=guards)
    with team.compile(db=tmp_path / "w.db", clock=clock) as app:
        runs = [
            app.run({"text": "q"}, run_id=f"r{i}", config={"callbacks": [seen]}) for i in range(3)
        ]
        calls_while_open = len(seen.calls)
        opened = app.workspace.breakers.states()["solver"]["state"]
    clock.now += 31
    # Another app on the same workspace (the breaker is shared), with a working model.
    with team.compile(
        db=tmp_path / "w.db", clock=clock, chat_models={"default": ScriptedChatModel()}
    ) as app:
        probe = app.run({"text": "q"}, run_id="r3", config={"callbacks": [seen]})
        closed = app.workspace.breakers.states()
        events = [
            e["kind"]
            for r in ("r1", "r2", "r3")
            for e in app.events.list(r)
            if e["kind"].startswith("breaker")
        ]
    # Each run has its own script position: runs 0 and 1 fail on their first call.
    assert [r.output["text"] for r in runs] == ["fallback: q"] * 3
    assert opened == "open"
    assert calls_while_open == 2  # run 2 never called the model: the breaker was open
    assert probe.status == "completed"
    assert probe.output["text"] != "fallback: q"  # the probe succeeded with the model
    assert "solver" not in closed
    assert events == ["breaker_opened", "breaker_closed"]


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_an_open_breaker_sends_calls_to_a_fallback_model(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    extra = "    model: flaky\n    fallback: {model: steady}"
    text = TEAM.replace(
        "  default: {{use: scripted, script: script.yaml}}",
        "  flaky: {{use: scripted, script: script.yaml}}\n  steady: scripted",
    )
    guards = "  breaker: {failures: 1, window_seconds: 60, cooldown_seconds: 600}"
    write("rules.py", RULES)
    write("script.yaml", "agents:\n  solver:\n    - {error: bad_request}\n")
    team = load_team(
        write("team.yaml", text.format(extra=extra, edge="", guards=guards, timeout=""))
    )
    with team.compile(db=tmp_path / "w.db") as app:
        opening, skipping = (app.run({"text": "q"}, run_id=r) for r in ("r1", "r2"))
        trail = [failures(app, r) for r in ("r1", "r2")]
    assert (opening.status, skipping.status) == ("completed", "completed")  # the steady model
    assert trail == [
        [(1, "ScriptedProviderError", "give up"), (0, "NodeError", "fallback")],
        [(0, "BreakerOpen", "fallback")],
    ]


def test_a_probe_a_guard_stopped_is_given_to_the_next_caller_after_a_cooldown(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    clock = Clock()
    extra = "    fallback: {function: 'rules:simple'}\n    budget: {max_input_tokens: 200}"
    guards = "  breaker: {failures: 1, window_seconds: 60, cooldown_seconds: 30}"
    team = fragile(
        write, "agents:\n  solver:\n    - {error: bad_request}\n", extra=extra, guards=guards
    )
    with team.compile(db=tmp_path / "w.db", clock=clock) as app:
        assert app.run({"text": "q"}, run_id="r1").output == {
            "text": "fallback: q",
            "confidence": 0.5,
        }
    working = {"chat_models": {"default": ScriptedChatModel()}, "clock": clock}
    with team.compile(db=tmp_path / "w.db", **working) as app:
        clock.now += 31
        refused = app.run({"text": "long " * 400}, run_id="r2")  # the probe: over its budget
        probing = app.workspace.breakers.states()["solver"]["state"]
        clock.now += 31
        probe = app.run({"text": "q"}, run_id="r3")
        closed = app.workspace.breakers.states()
    assert (refused.status, probing) == ("halted", "probing")
    assert probe.status == "completed"
    assert probe.output["text"] != "fallback: q"  # the model answered: the breaker closed
    assert "solver" not in closed


def test_runs_shows_an_open_breaker(write: Callable[..., Path], tmp_path: Path) -> None:
    from tests.conftest import run_cli

    script = "agents:\n  solver:\n    - {error: bad_request}\n"
    extra = "    fallback: {function: 'rules:simple'}"
    guards = "  breaker: {failures: 1, window_seconds: 60, cooldown_seconds: 600}"
    with fragile(write, script, extra=extra, guards=guards).compile(db=tmp_path / "w.db") as app:
        assert app.run({"text": "q"}).ok
    listed = run_cli("runs", "--db", "w.db", cwd=tmp_path)
    assert listed.code == 0
    assert "circuit breaker of solver: open after 1 failures" in listed.stdout


def test_twelve_agents_one_always_failing_still_complete(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("rules.py", "def simple(note):\n    return {'text': 'degraded: ' + note.text}\n")
    write("script.yaml", "agents:\n  a6:\n    - {error: bad_request}\nthen: repeat\n")
    agents = "\n".join(
        f"  - {{id: a{i}, role: Step {i}"
        + (", fallback: {function: 'rules:simple'}" if i == 6 else "")
        + "}"
        for i in range(12)
    )
    edges = "\n".join(
        f"    - {{from: a{i}, to: {'END' if i == 11 else f'a{i + 1}'}, schema: Note}}"
        for i in range(12)
    )
    team = load_team(
        write(
            "twelve.yaml",
            f"""\
version: 1
name: twelve
models: {{default: {{use: scripted, script: script.yaml}}}}
schemas:
  Note: {{fields: {{text: str}}}}
agents:
{agents}
flow:
  entry: a0
  input: Note
  output: Note
  edges:
{edges}
""",
        )
    )
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "start"})
        trace = [(e["kind"], e["agent"], e.get("then")) for e in app.events.list(result.run_id)]
        handoffs = [
            s.values["_handoff"]
            for s in app.graph.get_state_history(app.config(result.run_id))
            if s.values.get("_handoff")
        ]
    assert result.status == "completed"
    assert result.path == [f"a{i}" for i in range(12)]
    assert trace == [("failure", "a6", "give up"), ("failure", "a6", "fallback")]
    degraded = [h for h in handoffs if h.get("degraded")]
    assert {h["source"] for h in degraded} == {"a6"}
    assert json.dumps(result.output)  # a valid Note reached the end
