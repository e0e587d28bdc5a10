"""Driving one run through the graph: the pure logic once, under a sync and an async loop.

Each loop yields the run's typed events (when asked for) and, last, its ``RunResult``.
Everything that blocks (reading and recording the run) happens in the App's ``end``,
which the async loop runs on a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command
from opentelemetry.trace import INVALID_SPAN, Span

from corral.errors import RunError
from corral.graphs._lease import Renewals
from corral.graphs._result import OnStep, Progress, RunResult
from corral.keys import HANDOVER_KEY
from corral.observability import (
    RunEvent,
    RunFinished,
    Spans,
    as_event,
    collecting,
    current,
    quiet,
    run_ended,
    with_span,
)

End = Callable[[str, BaseException | None, Progress], RunResult]


class Drive:
    """One run's stream: what to ask LangGraph for, and how its chunks become events."""

    def __init__(
        self,
        run_id: str,
        start: dict[str, Any] | Command[Any] | None,
        config: RunnableConfig,
        durability: str,
        *,
        on_step: OnStep | None = None,
        events: bool = False,
        clock: Callable[[], float],
        spans: Spans,
        team: str,
        renew: Callable[[], object] | None = None,
        renew_every: float = 20.0,
        renewals: Renewals | None = None,
        parallel: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.run_id = run_id
        self.start = start
        self.config = config
        self.durability = durability
        self.clock = clock
        self.events = events
        self.progress = Progress(run_id, on_step, fresh=isinstance(start, dict), parallel=parallel)
        self.heard: deque[dict[str, Any]] = deque()
        """Events the nodes emitted (nodes may run on worker threads: a deque is safe)."""
        self.spans = spans
        self.team = team
        self.span: Span = INVALID_SPAN  # until ``open``
        self._renew = renew
        self.renew = self._renewed if renew is not None else None
        """Extends this process's lease on the run (``RunRegistry.renew``)."""
        self.lost = False
        """A renewal found the run taken over by another process (it drives it now)."""
        self.renew_every = renew_every
        self.renewals = renewals
        """The App's lease timer (``None``: renewed between steps only)."""
        self.renewed = clock()
        self._due = threading.Lock()  # asked between steps and by the renewal timer

    def due(self) -> bool:
        """True when the lease should be renewed (a third of a lease passed since the
        last renewal): one small write now and then, not one per step. Asked at every
        step, it answers "not yet" without the lock; only a renewal takes it."""
        if self.renew is None or self.clock() < self.renewed + self.renew_every:
            return False
        with self._due:  # the timer may ask at the same time: one of the two renews
            if self.clock() < self.renewed + self.renew_every:
                return False
            self.renewed = self.clock()
            return True

    def _renewed(self) -> object:
        kept = self._renew() if self._renew is not None else None
        if kept is False:
            self.lost = True
        return kept

    def held(self) -> None:
        """Raise ``RunError`` once the run was found taken over (a stalled driver whose
        lease ended, or whose worker's attempt Temporal retried elsewhere): this process
        stops driving it at the step it is at."""
        if self.lost:
            raise RunError(
                f"run {self.run_id!r} was taken over by another process, which drives it "
                "now; this one stopped"
            )

    def renewing(self) -> AbstractContextManager[None]:
        """While the graph runs: the App's lease timer renews the lease when due, so a
        step longer than a lease keeps its run (steps that end renew it too, see
        ``drive``), until the run ends or is not this process's any more."""
        if self.renewals is None or self.renew is None:
            return nullcontext()
        return self.renewals.holding(self)

    def open(self) -> RunnableConfig:
        """Start the run's span; the config that carries it to the nodes."""
        fresh = self.progress.fresh
        self.span = self.spans.run(self.team, self.run_id, resumed=not fresh)
        return with_span(self.config, self.span)

    def ended(self, end: End, error: BaseException | None) -> RunResult:
        """Record how the run ended (``end``, with the run's span current), then end the
        span with the run's status, usage and first error."""
        handover = self.config.get("configurable", {}).get(HANDOVER_KEY)
        if isinstance(error, asyncio.CancelledError) and callable(handover) and handover():
            self.progress.handed_over = True
        with current(self.span) as span:
            result = end(self.run_id, error, self.progress)
            trouble = result.status in ("failed", "halted") and result.errors
            run_ended(
                span,
                result.status,
                result.usage,
                result.cost_usd,
                result.errors[0] if trouble else None,
            )
        return result

    def asked(self, graph: Any) -> dict[str, Any]:
        """What the run asks of the graph's stream: its chunks (only the channels its
        result is made of, unless each step's update is wanted) and its durability."""
        return {
            "stream_mode": self.progress.mode,
            "durability": self.durability,
            "output_keys": self.progress.keys(graph.channels),
        }

    def listening(self) -> AbstractContextManager[None]:
        """While the graph runs: its events come here (none when no one asked for them)."""
        return collecting(self.heard.append) if self.events else quiet()

    def take(self, chunk: Any) -> list[RunEvent]:
        """Keep what the result needs from a chunk; the typed events heard until now."""
        self.progress(chunk)
        if not self.events:
            return []
        return self.drain()  # (a pause is told by the node that pauses: ``review_pending``)

    def drain(self) -> list[RunEvent]:
        """The events heard and not yet taken."""
        found = []
        while self.heard:
            found.append(as_event(self.heard.popleft()))
        return found

    def finished(self, result: RunResult) -> RunFinished:
        """The last event of the run."""
        return finished(result, self.clock())


def finished(result: RunResult, at: float) -> RunFinished:
    """A ``run_finished`` event for ``result``."""
    data = result.to_dict()
    return RunFinished(
        run_id=result.run_id,
        at=at,
        status=result.status,
        output=result.output,
        usage=data["usage"],
        cost_usd=result.cost_usd,
        errors=data["errors"],
    )


_DONE = object()
"""What a finished stream of steps gives instead of a chunk."""


def drive(run: Drive, graph: Any, end: End) -> Iterator[RunEvent | RunResult]:
    """Run the graph; yield the events, then the result."""
    config = run.open()
    listening = run.listening()  # around each step, never across this generator's yields
    try:
        with run.renewing():
            steps = graph.stream(run.start, config, **run.asked(graph))
            try:
                while True:
                    with listening:
                        chunk = next(steps, _DONE)
                    if chunk is _DONE:
                        break
                    if run.due() and run.renew is not None:
                        run.renew()
                    run.held()
                    yield from run.take(chunk)
            finally:
                steps.close()
    except Exception as exc:
        yield from run.drain()
        yield run.ended(end, exc)
        return
    except BaseException as exc:  # Ctrl-C, a consumer that stopped: record, then go on
        run.ended(end, exc)
        raise
    yield from run.drain()
    yield run.ended(end, None)


async def adrive(run: Drive, graph: Any, end: End) -> AsyncGenerator[RunEvent | RunResult, None]:
    """``drive`` for asyncio: recording the end runs on a worker thread."""
    config = run.open()
    listening = run.listening()  # around each step: the caller's context between events
    try:
        with run.renewing():
            steps = graph.astream(run.start, config, **run.asked(graph))
            try:
                while True:
                    with listening:
                        chunk = await anext(steps, _DONE)
                    if chunk is _DONE:
                        break
                    if run.due() and run.renew is not None:
                        await asyncio.to_thread(run.renew)
                    run.held()
                    for event in run.take(chunk):
                        yield event
            finally:
                await steps.aclose()
    except Exception as exc:
        for event in run.drain():
            yield event
        yield await asyncio.to_thread(run.ended, end, exc)
        return
    except BaseException as exc:
        await asyncio.to_thread(run.ended, end, exc)
        raise
    for event in run.drain():
        yield event
    yield await asyncio.to_thread(run.ended, end, None)


def last(items: Iterator[RunEvent | RunResult]) -> RunResult:
    """The result at the end of a drive."""
    found: RunEvent | RunResult | None = None
    for found in items:  # noqa: B007 (only the last one matters)
        pass
    assert isinstance(found, RunResult)
    return found


async def alast(items: AsyncIterator[RunEvent | RunResult]) -> RunResult:
    """``last`` for an async drive."""
    found: RunEvent | RunResult | None = None
    async for found in items:  # noqa: B007
        pass
    assert isinstance(found, RunResult)
    return found
