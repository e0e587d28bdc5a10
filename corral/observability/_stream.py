"""The typed events of a run, as ``App.stream``/``astream`` yield them.

Nodes emit each event as a plain JSON-ready dict through LangGraph's ``custom`` stream
mode (``emit``), so ``app.graph.stream(..., stream_mode="custom")`` yields the same
dicts; ``RunEvent`` parses one back into its typed class (the ``kind`` field says
which). Every event carries the run id, the time (epoch seconds) and the agent, if any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Annotated, Any, Literal

from langgraph.config import get_stream_writer
from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    """The run (LangGraph thread) the event belongs to."""
    at: float
    """When it happened (seconds since the epoch, from the app's clock)."""
    agent: str | None = None
    """The agent it concerns, if any."""


class RunStarted(_Event):
    """A run began (``App.stream`` only: it is not a node's event)."""

    kind: Literal["run_started"] = "run_started"
    team: str
    input: dict[str, JsonValue]
    resumed: bool = False


class StepDone(_Event):
    """An agent of the flow finished its piece of work and handed the payload on."""

    kind: Literal["step"] = "step"
    inbound_schema: str
    inbound: dict[str, JsonValue]
    output: dict[str, JsonValue] | None
    output_schema: str
    decision: str
    """Where the payload went: ``-> agent``, ``-> END``, ``to review`` or ``failed``."""
    seconds: float
    input_tokens: int
    output_tokens: int
    llm_calls: int
    degraded: bool = False


class ModelCall(_Event):
    """One call to a chat model (each attempt of a retried call is its own event)."""

    kind: Literal["model_call"] = "model_call"
    model: str
    attempt: int
    status: Literal["ok", "error"]
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float
    error: str | None = None


class ToolCall(_Event):
    """A tool call the model asked for: run, answered from its record, refused, failed,
    found in doubt after a crash, or skipped (in doubt, and a person said not to run it)."""

    kind: Literal["tool_call"] = "tool_call"
    tool: str
    arguments: JsonValue
    verdict: Literal["ran", "replayed", "denied", "failed", "in_doubt", "skipped"]
    result: str
    """The result (or the reason it was refused), cut to 500 characters."""


class GuardTrip(_Event):
    """A guard refused work; ``policy`` says whether it halts the run or escalates."""

    kind: Literal["guard_trip"] = "guard_trip"
    guard: str
    limit: float
    seen: float | None
    policy: str
    message: str
    until: float | None = None


class Failure(_Event):
    """Something failed; ``then`` says what happens next (a retry, a fallback, ...)."""

    kind: Literal["failure"] = "failure"
    attempt: int
    error: str
    message: str
    then: str


class BudgetAlert(_Event):
    """Spending crossed an alert threshold (once per agent, or the team, a day)."""

    kind: Literal["budget_alert"] = "budget_alert"
    layer: str
    used: float
    limit: float
    threshold: float
    day: str


class ReviewRequested(_Event):
    """The run paused for a person; ``review`` holds what waits and why."""

    kind: Literal["review_pending"] = "review_pending"
    review: dict[str, JsonValue]


class SubtaskCreated(_Event):
    """A supervisor handed a subtask to a direct report."""

    kind: Literal["subtask_created"] = "subtask_created"
    task_id: str
    assignee: str
    depth: int
    instruction: str
    payload: dict[str, JsonValue]


class SubtaskFinished(_Event):
    """A subtask ended, with its result or why it failed."""

    kind: Literal["subtask_finished"] = "subtask_finished"
    task_id: str
    assignee: str
    status: Literal["done", "failed"]
    result: dict[str, JsonValue] | None = None
    error: str | None = None
    seconds: float


class RunFinished(_Event):
    """A run ended (``App.stream`` only): its status, output, usage and errors."""

    kind: Literal["run_finished"] = "run_finished"
    status: str
    output: dict[str, JsonValue] | None
    usage: dict[str, JsonValue]
    cost_usd: float | None
    errors: list[dict[str, JsonValue]]


RunEvent = Annotated[
    RunStarted
    | StepDone
    | ModelCall
    | ToolCall
    | GuardTrip
    | Failure
    | BudgetAlert
    | ReviewRequested
    | SubtaskCreated
    | SubtaskFinished
    | RunFinished,
    Field(discriminator="kind"),
]
"""Any event of a run; ``EVENTS.validate_python(d)`` turns an emitted dict into one."""

EVENTS: TypeAdapter[RunEvent] = TypeAdapter(RunEvent)

_BY_KIND: dict[str, type[_Event]] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        RunStarted,
        StepDone,
        ModelCall,
        ToolCall,
        GuardTrip,
        Failure,
        BudgetAlert,
        ReviewRequested,
        SubtaskCreated,
        SubtaskFinished,
        RunFinished,
    )
}


def as_event(data: dict[str, Any]) -> RunEvent:
    """The typed event corral's own nodes emitted as ``data`` (built without validating
    again: the nodes emit exactly the fields; ``EVENTS.validate_python`` checks any
    other source)."""
    cls = _BY_KIND.get(data.get("kind", ""))
    if cls is None:
        return EVENTS.validate_python(data)
    return cls.model_construct(**data)  # type: ignore[return-value]


_OUTER: ContextVar[Callable[[Any], None] | None] = ContextVar("corral_stream", default=None)
"""The writer of the run's own stream, while work runs in a nested graph (a delegation
round) whose events LangGraph would otherwise keep to itself."""


def emit(event: dict[str, Any]) -> None:
    """Send an event into the run's ``custom`` stream (nothing outside a run, nothing when
    no one streams ``custom``)."""
    writer = _OUTER.get()
    if writer is None:
        try:
            writer = get_stream_writer()
        except RuntimeError:  # not inside a graph run
            return
    writer(event)


def review_requested(run_id: str, at: float, error: BaseException) -> None:
    """Stream a ``review_pending`` event for each request an interrupt carries."""
    for item in getattr(error, "args", ((),))[0] or ():
        value = getattr(item, "value", None)
        if isinstance(value, dict):
            emit(
                {
                    "kind": "review_pending",
                    "run_id": run_id,
                    "at": at,
                    "agent": value.get("source"),
                    "review": value,
                }
            )


class Collecting:
    """Within each ``with`` block, the run's events go to ``listener``: reusable, one
    block at a time (a driver enters it around each step it asks for, never across a
    ``yield`` of its own: a context variable set there would stay set in its caller)."""

    __slots__ = ("_listener", "_token")

    def __init__(self, listener: Callable[[Any], None]) -> None:
        self._listener = listener
        self._token: Token[Callable[[Any], None] | None] | None = None

    def __enter__(self) -> None:
        self._token = _OUTER.set(self._listener)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _OUTER.reset(self._token)
            self._token = None


def collecting(listener: Callable[[Any], None]) -> Collecting:
    """Within the block, the run's events go to ``listener`` (the App's own stream)."""
    return Collecting(listener)


def _dropped(_event: Any) -> None:
    """Where the events of a run no one listens to go (``quiet``)."""


def listened() -> bool:
    """False inside ``quiet``: no one will see an event, so a node need not build it."""
    return _OUTER.get() is not _dropped


def quiet() -> Collecting:
    """Within the block, the run's events (its nested graphs' too) go nowhere: a run
    driven with no one asking for its events."""
    return Collecting(_dropped)


@contextmanager
def outer_stream() -> Iterator[None]:
    """Within the block, events of nested graphs go to the current run's stream."""
    if _OUTER.get() is not None:  # already inside one: it is the run's own
        yield
        return
    try:
        writer = get_stream_writer()
    except RuntimeError:
        writer = None
    token = _OUTER.set(writer)
    try:
        yield
    finally:
        _OUTER.reset(token)
