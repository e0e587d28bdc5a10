"""A run the server executes (a LangGraph "run" on a thread): its record, its event log,
and the loop that drives the team's graph and fills the log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from corral.errors import CorralError, RunError
from corral.graphs import App
from corral.server._wire import now_iso, plain

Start = dict[str, Any] | Command[Any] | None
"""What the graph starts from: an input, a resume command, or nothing (go on)."""
JobStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
STREAM_MODES = (
    "values",
    "updates",
    "custom",
    "messages-tuple",
    "debug",
    "tasks",
    "checkpoints",
    "events",
)
"""The stream modes a run may ask for (``messages-tuple`` is LangGraph's ``messages``;
``events`` is LangChain's ``astream_events`` v2, as LangGraph's server streams it)."""


@dataclass
class Job:
    """One run on a thread. Its events are kept in order, so a client that joins late or
    reconnects (``Last-Event-ID``) reads each event once, from where it left off."""

    run_id: str
    thread_id: str
    assistant_id: str
    metadata: dict[str, Any]
    multitask_strategy: str
    stream_mode: list[str]
    status: JobStatus = "pending"
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    events: list[tuple[str, Any]] = field(default_factory=list)
    output: Any = None
    """The last ``values`` chunk: what ``wait`` and ``join`` answer with."""
    error: dict[str, Any] | None = None
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    """The interrupts the run stopped at (a review waiting)."""
    starts_thread: bool = False
    """Whether this run started its thread's corral run (so a rollback deletes it)."""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    worker: int | None = None
    """The pid of the worker process running it (``None``: this process)."""
    stopped: bool = False
    """Cancelled for good (by a client, or replaced on its thread), not by a closing."""
    ahead: Job | None = None
    """The thread's run it was queued behind (``enqueue``, ``interrupt``)."""
    _signal: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, event: str, data: Any) -> None:
        """Add an event and wake every reader."""
        self.events.append((event, data))
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()

    def take(self, mode: str, data: Any) -> None:
        """A chunk of the graph's stream (plain data): the output, the interrupts, and an
        event for the modes asked (``messages`` is ``messages-tuple``)."""
        if mode == "values":
            self.output = data
        elif mode == "updates" and "__interrupt__" in data:
            self.interrupts = data["__interrupt__"]
        name = "messages-tuple" if mode == "messages" else mode
        if name in self.stream_mode or mode in self.stream_mode:
            self.push("messages" if mode == "messages" else name, data)

    def set_status(self, status: JobStatus) -> None:
        self.status = status
        self.updated_at = now_iso()

    async def follow(self, after: int = -1) -> AsyncIterator[tuple[int, str, Any]]:
        """The events after the one numbered ``after``, then each one as it comes, until
        the run ends."""
        index = after + 1
        while True:
            signal = self._signal
            while index < len(self.events):
                event, data = self.events[index]
                yield index, event, data
                index += 1
            if self.done.is_set():
                return
            await signal.wait()

    def to_dict(self) -> dict[str, Any]:
        """The SDK's ``Run``."""
        return {
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "assistant_id": self.assistant_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "status": self.status,
            "metadata": self.metadata
            if self.worker is None
            else {**self.metadata, "corral_worker_pid": self.worker},
            "multitask_strategy": self.multitask_strategy,
            "kwargs": {"stream_mode": self.stream_mode},
        }


def graph_modes(asked: list[str]) -> list[str]:
    """The modes to ask the graph for: those asked (``messages-tuple`` is ``messages``),
    and always ``values`` (the run's output) and ``updates`` (its interrupts)."""
    modes = {"messages" if m == "messages-tuple" else m for m in asked} - {"events"}
    return sorted(modes | {"values", "updates"})


def error_of(exc: BaseException) -> dict[str, Any]:
    """A failed run's error as the client reads it (never a traceback)."""
    error = {"error": type(exc).__name__, "message": str(getattr(exc, "detail", exc))}
    if isinstance(exc, CorralError) and hasattr(exc, "to_dict"):
        error["detail"] = plain(exc.to_dict())
    return error


def unfinished(job: Job | None) -> list[Job]:
    """``job`` and the runs queued ahead of it that have not ended, newest first: a
    queued run cancelled ends at once, while the run ahead of it may still be running.
    The runs that ended leave the chain (it does not grow while its thread stays busy)."""
    if job is None:
        return []
    found = [] if job.done.is_set() else [job]
    kept, ahead = job, job.ahead
    while ahead is not None:
        if not ahead.done.is_set():
            found.append(ahead)
            kept.ahead = ahead
            kept = ahead
        ahead = ahead.ahead
    kept.ahead = None
    return found


async def opening(
    job: Job, start: Start | Callable[[], Awaitable[Start]], before: Job | None
) -> Start:
    """Begin ``job``: wait for the runs queued ahead (``before`` and those ahead of it) to
    end, make its start (a decision is checked when the job starts), then mark it
    running, ``metadata`` first."""
    for ahead in unfinished(before):
        await ahead.done.wait()
    if callable(start):
        start = await start()
    job.set_status("running")
    job.push("metadata", {"run_id": job.run_id, "attempt": 1})
    return start


async def drive(
    job: Job,
    app: App,
    start: Start | Callable[[], Awaitable[Start]],
    config: RunnableConfig,
    *,
    executor: Executor,
    before: Job | None = None,
) -> None:
    """Run the team's graph for ``job`` through ``executor``: events into its log, then
    its end. A job queued behind ``before`` (``multitask_strategy: enqueue``) waits for it
    to end first, then makes its start (a review's decision is checked against the review
    then waiting). Called on the HTTP loop, which owns ``job``."""
    try:
        start = await opening(job, start, before)
        if before is not None:  # its thread's run ran meanwhile: running again, held here
            holder = await asyncio.to_thread(app.runs.take_over, job.thread_id)
            if holder is not None:
                raise RunError(f"thread {job.thread_id!r} is being run by process {holder}")
        job.error = await executor.run(job, app, start, config)
        await asyncio.to_thread(app.settle, job.thread_id, _raised(job.error))
        job.set_status("success" if job.error is None else "error")
    except asyncio.CancelledError:  # cancelled (``action=interrupt``): its checkpoints stay
        began = job.status == "running"  # not while queued: the run ahead has the record
        job.set_status("interrupted")
        if job.stopped and began:  # for good: its record says so, and no process holds it
            await asyncio.to_thread(app.settle, job.thread_id, asyncio.CancelledError())
    except Exception as exc:  # the run failed: the client hears why, never a traceback
        job.error = error_of(exc)
        job.set_status("error")
    finally:
        if job.error is not None:
            job.push("error", job.error)
        job.push("end", None)
        job.done.set()


def _raised(error: dict[str, Any] | None) -> BaseException | None:
    """What a run that failed between its steps raised, from its error as clients read it."""
    if error is None:
        return None
    if error["error"] == "GraphRecursionError":  # its step limit
        return GraphRecursionError(error["message"])
    return RunError(error["message"])


async def chunks(
    app: App, start: Start, config: RunnableConfig, stream_mode: list[str], run_id: str
) -> AsyncIterator[tuple[str, Any]]:
    """The graph's ``(mode, chunk)`` stream as plain JSON data, only what the run's job
    takes (see ``Job.take``): ``values``, interrupts, and the modes asked for."""
    asked = set(stream_mode)
    async for mode, chunk in _chunks(app, start, config, stream_mode, run_id):
        wanted = mode == "values" or mode in asked
        wanted = wanted or (mode == "messages" and "messages-tuple" in asked)
        if wanted or (mode == "updates" and isinstance(chunk, dict) and "__interrupt__" in chunk):
            yield mode, plain(chunk)


async def _chunks(
    app: App, start: Start, config: RunnableConfig, stream_mode: list[str], run_id: str
) -> AsyncIterator[tuple[str, Any]]:
    """The graph's ``(mode, chunk)`` stream. With ``events`` asked, read as LangGraph's
    server does, from ``astream_events`` (v2) under the run's id: the run's own stream
    chunks as they are, and every other event (a node's or a model's start, stream and
    end) as ``("events", event)``."""
    kwargs: dict[str, Any] = {
        "stream_mode": graph_modes(stream_mode),
        "output_keys": app.graph.output_channels,  # as LangGraph's server: the flow's output
        "durability": app.plan.checkpoint.durability,
    }
    if "events" not in stream_mode:
        async for mode, chunk in app.graph.astream(start, config, **kwargs):  # type: ignore[arg-type]
            yield mode, chunk
        return
    config = {**config, "run_id": uuid.UUID(run_id)}
    events = app.graph.astream_events(start, config, version="v2", **kwargs)  # type: ignore[call-overload]
    async for event in events:
        if "langsmith:hidden" in (event.get("tags") or ()):
            continue
        if event["event"] == "on_chain_stream" and event["run_id"] == run_id:
            mode, chunk = event["data"]["chunk"]
            yield mode, chunk
        else:
            yield "events", event


class Executor(Protocol):
    """Where runs' graphs execute, apart from the HTTP loop: a thread in this process
    (``ThreadExecutor``), worker processes (``ProcessPool``), or another backend."""

    async def begin(self) -> None:
        """Get ready (before the first run)."""

    async def run(self, job: Job, app: App, start: Start, config: RunnableConfig) -> Any:
        """Run ``app``'s graph for ``job`` from ``start``, handing each chunk of
        ``chunks`` to ``job.take`` on the caller's loop; ``None`` once it ended, else its
        error (``error_of``). Cancelling the caller cancels the run and waits for its
        end (its checkpoints stay)."""

    async def metrics(self) -> list[bytes]:
        """Prometheus text of each process that ran graphs elsewhere (none: this one)."""

    async def stop(self) -> None:
        """Stop (the runs were ended first)."""
