"""OpenTelemetry spans: one trace per run, nested as the work was, GenAI attributes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import StatusCode

from corral import App, RunResult, load_team

TEAM = """\
version: 1
name: desk
models:
  default: {use: scripted, script: script.yaml}
schemas:
  Ask: {fields: {question: str}}
  Note: {fields: {text: str}}
tools:
  invoice_status: {import: "tools:invoice_status"}
agents:
  - {id: lead, role: Lead, output: Note}
  - {id: clerk, role: Billing clerk, reports_to: lead, input: Ask, output: Note,
     tools: [invoice_status]}
  - {id: editor, role: Editor, input: Note, output: Note}
flow:
  entry: lead
  input: Ask
  output: Note
  edges: [{from: lead, to: editor, schema: Note}, {from: editor, to: END, schema: Note}]
"""

TOOLS = '''\
from langchain_core.tools import tool


@tool
def invoice_status(invoice_id: str) -> str:
    """The payment status of an invoice."""
    if invoice_id == "boom":
        raise RuntimeError("billing system down")
    return f"{invoice_id}: paid twice"
'''

DELEGATE = """\
agents:
  lead:
    - delegate: [{assignee: clerk, instruction: look into it, payload: {question: q}}]
  clerk:
    - tool: {name: invoice_status, args: {invoice_id: INV-7}}
    - tool: {name: delete_invoice, args: {invoice_id: INV-7}}
"""


def desk(write: Callable[..., Path], script: str, guards: str = "") -> Any:
    write("tools.py", TOOLS)
    write("script.yaml", script)
    return load_team(write("team.yaml", TEAM + guards))


@pytest.fixture
def exported() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def run(app: App, how: str) -> RunResult:
    question = {"question": "why was I charged twice?"}
    return app.run(question) if how == "run" else asyncio.run(app.arun(question))


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(s for s in spans if s.context.span_id == span.parent.span_id)


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


@pytest.mark.parametrize("how", ["run", "arun"])
def test_a_run_is_one_trace_nested_as_the_work_was(
    write: Callable[..., Path],
    tmp_path: Path,
    exported: tuple[TracerProvider, InMemorySpanExporter],
    how: str,
) -> None:
    provider, exporter = exported
    with desk(write, DELEGATE).compile(db=tmp_path / "w.db", tracer_provider=provider) as app:
        result = run(app, how)
        ledger = app.ledger.calls(result.run_id)
    assert result.status == "completed"
    spans = list(exporter.get_finished_spans())
    assert len({s.context.trace_id for s in spans}) == 1
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "invoke_workflow desk"
    assert root.attributes is not None
    assert root.attributes[gen_ai.GEN_AI_OPERATION_NAME] == "invoke_workflow"
    assert root.attributes[gen_ai.GEN_AI_WORKFLOW_NAME] == "desk"
    assert root.attributes[gen_ai.GEN_AI_CONVERSATION_ID] == result.run_id
    (lead,) = named(spans, "invoke_agent lead")
    (editor,) = named(spans, "invoke_agent editor")
    (clerk,) = named(spans, "invoke_agent clerk")
    assert parent_of(lead, spans) is root
    assert parent_of(editor, spans) is root
    assert parent_of(clerk, spans) is lead  # a subtask nests under the step delegating it
    assert clerk.attributes is not None
    assert clerk.attributes[gen_ai.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert clerk.attributes[gen_ai.GEN_AI_AGENT_NAME] == "clerk"
    assert clerk.attributes["corral.delegator"] == "lead"
    assert clerk.attributes["corral.depth"] == 1

    operations = {o.value for o in gen_ai.GenAiOperationNameValues}
    assert {"chat", "execute_tool", "invoke_agent", "invoke_workflow"} <= operations
    chats = named(spans, "chat scripted")
    by_agent = {s.attributes["corral.agent"]: s for s in (lead, clerk, editor)}  # type: ignore[index]
    for chat in chats:
        assert chat.attributes is not None
        assert parent_of(chat, spans) is by_agent[chat.attributes["corral.agent"]]
        assert chat.attributes[gen_ai.GEN_AI_OPERATION_NAME] == "chat"
        assert chat.attributes[gen_ai.GEN_AI_PROVIDER_NAME] == "scripted"
        assert chat.attributes[gen_ai.GEN_AI_SYSTEM] == "scripted"
        assert chat.attributes[gen_ai.GEN_AI_REQUEST_MODEL] == "scripted"
        assert chat.attributes[gen_ai.GEN_AI_RESPONSE_MODEL] == "scripted"
    # each model call's span carries the ledger's own figures
    assert sorted(
        (
            s.attributes["corral.agent"],  # type: ignore[index]
            s.attributes[gen_ai.GEN_AI_USAGE_INPUT_TOKENS],  # type: ignore[index]
            s.attributes[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS],  # type: ignore[index]
        )
        for s in chats
    ) == sorted((c["agent"], c["input_tokens"], c["output_tokens"]) for c in ledger)
    assert root.attributes[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] == result.usage["input_tokens"]
    assert root.attributes[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage["output_tokens"]
    assert root.attributes["corral.status"] == "completed"
    assert root.status.status_code is StatusCode.UNSET

    ran, refused = (
        named(spans, "execute_tool invoice_status"),
        named(spans, "execute_tool delete_invoice"),
    )
    assert len(ran) == len(refused) == 1
    for tool, verdict in ((ran[0], "ran"), (refused[0], "denied")):
        assert parent_of(tool, spans) is clerk
        assert tool.attributes is not None
        assert tool.attributes[gen_ai.GEN_AI_OPERATION_NAME] == "execute_tool"
        assert tool.attributes["corral.tool.verdict"] == verdict
        assert tool.attributes[gen_ai.GEN_AI_TOOL_CALL_ID]
    assert ran[0].attributes[gen_ai.GEN_AI_TOOL_NAME] == "invoice_status"  # type: ignore[index]
    (denial,) = refused[0].events
    assert denial.name == "corral.permission_denied"
    assert "not one of 'clerk''s tools" in str(denial.attributes["reason"])  # type: ignore[index]
    assert all(s.attributes["corral.run_id"] == result.run_id for s in spans)  # type: ignore[index]
    assert all(s.attributes["corral.team"] == "desk" for s in (root, lead, editor))  # type: ignore[index]


def test_a_failed_run_and_its_failed_call_have_status_error(
    write: Callable[..., Path],
    tmp_path: Path,
    exported: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = exported
    script = "agents:\n  lead:\n    - error: bad_request\n"
    with desk(write, script).compile(db=tmp_path / "w.db", tracer_provider=provider) as app:
        result = app.run({"question": "q"})
    assert result.status == "failed"
    spans = list(exporter.get_finished_spans())
    (root,) = named(spans, "invoke_workflow desk")
    (lead,) = named(spans, "invoke_agent lead")
    (chat,) = named(spans, "chat scripted")
    for span in (root, lead, chat):
        assert span.status.status_code is StatusCode.ERROR
    assert root.attributes is not None
    assert root.attributes[error_attributes.ERROR_TYPE] == "NodeError"
    assert root.attributes["corral.status"] == "failed"
    assert "failure" in {e.name.removeprefix("corral.") for e in lead.events}


def test_a_guard_trip_is_an_event_of_the_work_it_stopped(
    write: Callable[..., Path],
    tmp_path: Path,
    exported: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = exported
    team = desk(write, DELEGATE, "guards: {max_llm_calls_per_task: 1}\n")
    with team.compile(db=tmp_path / "w.db", tracer_provider=provider) as app:
        result = app.run({"question": "q"})
    assert result.status == "halted"
    spans = list(exporter.get_finished_spans())
    (clerk,) = named(spans, "invoke_agent clerk")
    (trip,) = [e for e in clerk.events if e.name == "corral.guard_trip"]
    assert trip.attributes is not None
    assert trip.attributes["guard"] == "max_llm_calls_per_task"
    assert trip.attributes["policy"] == "halt"
    (root,) = named(spans, "invoke_workflow desk")
    assert root.status.status_code is StatusCode.ERROR


def test_a_failed_tool_call_has_status_error_and_the_run_nests_under_the_callers_span(
    write: Callable[..., Path],
    tmp_path: Path,
    exported: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = exported
    script = DELEGATE.split("  clerk:", maxsplit=1)[0] + (
        "  clerk:\n    - tool: {name: invoice_status, args: {invoice_id: boom}}\n"
    )
    team = desk(write, script)
    with (
        team.compile(db=tmp_path / "w.db", tracer_provider=provider) as app,
        provider.get_tracer("caller").start_as_current_span("request") as request,
    ):
        result = app.run({"question": "q"})
    assert result.status == "completed"  # the model was told, and answered
    spans = list(exporter.get_finished_spans())
    (root,) = named(spans, "invoke_workflow desk")
    assert root.parent is not None
    assert root.parent.span_id == request.get_span_context().span_id
    (tool,) = named(spans, "execute_tool invoice_status")
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes is not None
    assert tool.attributes["corral.tool.verdict"] == "failed"
    assert tool.attributes[error_attributes.ERROR_TYPE] == "tool_failed"
    assert "billing system down" in str(tool.status.description)


def test_with_nothing_configured_no_span_records_and_runs_work(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    with desk(write, DELEGATE).compile(db=tmp_path / "w.db") as app:
        result = asyncio.run(app.arun({"question": "q"}))
        probe = app.services.spans.run("desk", "probe", resumed=False)
    assert result.status == "completed"
    assert not probe.is_recording()  # OpenTelemetry's no-op: the process set no provider


IN_PROCESS = """\
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from corral import load_team

exporter = InMemorySpanExporter()


def set_provider():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
"""
"""The start of a script that traces a team in a process of its own, into ``exporter``
once it calls ``set_provider()``."""


def in_process(script: str, cwd: Path) -> str:
    """What ``IN_PROCESS`` followed by ``script`` prints, run in a process of its own."""
    code = IN_PROCESS + script
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_the_process_tracer_provider_is_used_when_none_is_given(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    desk(write, "replies: []\n")
    out = in_process(
        """\
set_provider()
with load_team("team.yaml").compile(db="w.db") as app:
    app.run({"question": "q"})
print(sorted({s.name for s in exporter.get_finished_spans()}))
""",
        tmp_path,
    )
    assert out.strip() == str(
        ["chat scripted", "invoke_agent editor", "invoke_agent lead", "invoke_workflow desk"]
    )


def test_a_provider_set_after_the_app_was_made_traces_the_next_runs(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    desk(write, "replies: []\n")
    out = in_process(
        """\
with load_team("team.yaml").compile(db="w.db") as app:
    app.run({"question": "q"}, run_id="before")
    set_provider()
    app.run({"question": "q"}, run_id="after")
print(sorted({s.attributes["corral.run_id"] for s in exporter.get_finished_spans()}))
print(sorted({s.name for s in exporter.get_finished_spans()}))
""",
        tmp_path,
    )
    runs, names = out.split("\n")[:2]
    assert runs == str(["after"])  # the run before the provider built no span at all
    assert names == str(
        ["chat scripted", "invoke_agent editor", "invoke_agent lead", "invoke_workflow desk"]
    )
