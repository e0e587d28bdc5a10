"""OpenTelemetry spans of a run, after the GenAI semantic conventions.

A run is an ``invoke_workflow {team}`` span; each flow step and each subtask an
``invoke_agent {agent}`` span under it (a subtask under the step or subtask that
delegated it); each model call a ``chat {model}`` span and each tool call an
``execute_tool {tool}`` span under its step or subtask. Guard verdicts, refusals and
failures are events of the span current when they happen. Only ``opentelemetry-api``
is needed: with no tracer provider given and none set for the process, every span is
a no-op one.

Parents are carried explicitly (in the LangGraph config, under ``SPAN_KEY``), since
LangGraph runs nodes on other threads and tasks; a node also makes its span current
while it works, so instrumentation below it (a provider's HTTP client) nests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from opentelemetry import context, trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, StatusCode, TracerProvider

from corral.keys import SPAN_KEY

# GenAI semantic-convention names (checked against opentelemetry-semantic-conventions
# by tests/observability/test_otel.py; that package is not a runtime dependency).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # the older name of the provider, still read by many backends
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
AGENT_NAME = "gen_ai.agent.name"
WORKFLOW_NAME = "gen_ai.workflow.name"
CONVERSATION_ID = "gen_ai.conversation.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
ERROR_TYPE = "error.type"


class Spans:
    """Opens corral's spans on one tracer: the given provider's, else the process's
    global one (OpenTelemetry's no-op until the process sets one)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.tracer = trace.get_tracer("corral", tracer_provider=provider)
        self.silent = self.look()

    def look(self) -> bool:
        """Whether no tracer provider is given or set for the process, so every span
        would be the no-op one and none is built. Asked when made and at each run's
        start (a provider set later is used from the next run on): OpenTelemetry's own
        lookup reads the environment each time, too slow for every step."""
        self.silent = self.provider is None and isinstance(
            trace.get_tracer_provider(), trace.ProxyTracerProvider
        )
        return self.silent

    def _start(
        self, name: str, parent: Span | None, kind: SpanKind, attributes: dict[str, Any]
    ) -> Span:
        where = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(name, where, kind)
        if span.is_recording():  # attributes cost nothing when nobody records
            span.set_attributes(attributes)
        return span

    def run(self, team: str, run_id: str, *, resumed: bool) -> Span:
        """A run (or a resumed run): the root of its steps, under the caller's span."""
        if self.look():
            return INVALID_SPAN
        attributes = {
            OPERATION: "invoke_workflow",
            WORKFLOW_NAME: team,
            CONVERSATION_ID: run_id,
            "corral.team": team,
            "corral.run_id": run_id,
            "corral.resumed": resumed,
        }
        return self._start(f"invoke_workflow {team}", None, SpanKind.INTERNAL, attributes)

    def agent(self, parent: Span | None, agent: str, run_id: str, **more: str | int | None) -> Span:
        """A flow step or a subtask of ``agent``; ``more`` become ``corral.*`` attributes."""
        if self.silent:
            return INVALID_SPAN
        attributes = {
            OPERATION: "invoke_agent",
            AGENT_NAME: agent,
            "corral.agent": agent,
            "corral.run_id": run_id,
            **{f"corral.{k}": v for k, v in more.items() if v is not None},
        }
        return self._start(f"invoke_agent {agent}", parent, SpanKind.INTERNAL, attributes)

    def chat(self, parent: Span | None, agent: str, run_id: str, label: str, attempt: int) -> Span:
        """A model call; ``label`` is corral's ``provider:model`` name of the model."""
        if self.silent:
            return INVALID_SPAN
        provider, model = _split(label)
        attributes = {
            OPERATION: "chat",
            PROVIDER: provider,
            SYSTEM: provider,
            REQUEST_MODEL: model,
            "corral.agent": agent,
            "corral.run_id": run_id,
            "corral.attempt": attempt,
        }
        return self._start(f"chat {model}", parent, SpanKind.CLIENT, attributes)

    def tool(self, parent: Span | None, agent: str, run_id: str, tool: str, call_id: str) -> Span:
        """A tool call the model asked for (run, answered from its record, or refused)."""
        if self.silent:
            return INVALID_SPAN
        attributes = {
            OPERATION: "execute_tool",
            TOOL_NAME: tool,
            TOOL_CALL_ID: call_id,
            "corral.agent": agent,
            "corral.run_id": run_id,
        }
        return self._start(f"execute_tool {tool}", parent, SpanKind.INTERNAL, attributes)


def _split(label: str) -> tuple[str, str]:
    """``provider:model`` as (provider, model); a bare name is both (``scripted``)."""
    provider, _, model = label.partition(":")
    return (provider, model) if model else (label, label)


def parent_span(config: RunnableConfig) -> Span | None:
    """The span a node's spans nest under, carried in its config (none: the current)."""
    found = (config.get("configurable") or {}).get(SPAN_KEY)
    return found if isinstance(found, Span) else None


def with_span(config: RunnableConfig, span: Span) -> RunnableConfig:
    """``config`` carrying ``span`` for the graphs and calls made under it."""
    return {**config, "configurable": {**(config.get("configurable") or {}), SPAN_KEY: span}}


class current:
    """Within the block ``span`` is current; it ends with the block. An error ends it
    with status ERROR; a pause for a person (an interrupt) is an event, not an error.
    The no-op span (no tracing) is not made current: nothing would read it. (A class,
    not ``@contextmanager``: it wraps every step.)"""

    __slots__ = ("span", "token")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.token: object = None

    def __enter__(self) -> Span:
        if self.span is not INVALID_SPAN:
            self.token = context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _tb: object
    ) -> None:
        span = self.span
        if span is INVALID_SPAN:
            return
        attached = self.token is not None
        if isinstance(error, GraphBubbleUp):
            span.add_event("corral.paused")
        elif isinstance(error, GeneratorExit):  # torn down (maybe elsewhere): no detach
            attached = False
            span.add_event("corral.cancelled")
        elif isinstance(error, Exception):
            failed(span, error)
        if attached:
            context.detach(self.token)  # type: ignore[arg-type]
        span.end()


def failed(span: Span, error: BaseException | str, kind: str | None = None) -> None:
    """Mark ``span`` as failed: status ERROR, ``error.type``, and the exception if any."""
    if not span.is_recording():
        return
    if isinstance(error, BaseException):
        span.record_exception(error)
        kind = kind or type(error).__name__
    span.set_attribute(ERROR_TYPE, kind or "error")
    span.set_status(StatusCode.ERROR, str(error)[:500])


def answered(
    span: Span, response_label: str, usage: Mapping[str, Any], cost_usd: float | None
) -> None:
    """A model call's answer: the model that answered, the tokens used, the cost (if
    the price is known)."""
    if span.is_recording():
        attributes = {
            RESPONSE_MODEL: _split(response_label)[1],
            INPUT_TOKENS: usage["input_tokens"],
            OUTPUT_TOKENS: usage["output_tokens"],
            "corral.cost_usd": cost_usd,
        }
        note(span, attributes)


def run_ended(
    span: Span,
    status: str,
    usage: Mapping[str, Any],
    cost_usd: float | None,
    error: BaseException | None,
) -> None:
    """A run's end: its status and usage; ERROR with its first error if it did not
    complete (failed or halted)."""
    used(span, usage, status=status, cost_usd=cost_usd)
    if error is not None:
        failed(span, error)


def used(span: Span, usage: Mapping[str, Any], **more: Any) -> None:
    """The tokens and model calls a run, step or subtask used; ``more`` become
    ``corral.*`` attributes."""
    if span.is_recording():
        attributes = {
            INPUT_TOKENS: usage["input_tokens"],
            OUTPUT_TOKENS: usage["output_tokens"],
            "corral.llm_calls": usage["llm_calls"],
            **{f"corral.{k}": v for k, v in more.items()},
        }
        note(span, attributes)


def note(span: Span, attributes: Mapping[str, Any]) -> None:
    """Set attributes on ``span`` (``None`` values are left out)."""
    if span.is_recording():
        span.set_attributes(_flat(attributes))


def tool_said(verdict: str, detail: str) -> None:
    """A tool call's verdict, on the current (the call's) span; ERROR if it failed."""
    span = trace.get_current_span()
    note(span, {"corral.tool.verdict": verdict})
    if verdict == "failed":
        failed(span, detail, "tool_failed")


def span_event(kind: str, data: Mapping[str, Any]) -> None:
    """An event (``corral.{kind}``) on the current span: a guard verdict, a refusal, a
    failure, a budget alert."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(f"corral.{kind}", _flat(data))


def _flat(data: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute values OpenTelemetry takes: scalars as they are, the rest as JSON."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, str | bool | int | float):
            out[key] = value
        else:
            out[key] = json.dumps(value, default=str)
    return out
