"""One body per node, two small drivers.

A node's logic is a generator that yields the calls it needs (a model, a user
function) and receives their results. ``invoke`` and ``ainvoke`` only differ in
how they perform those calls, so sync and async runs share every line of logic.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from abc import abstractmethod
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs
from opentelemetry.trace import Span
from pydantic import BaseModel

from corral.errors import CallTimeout
from corral.keys import AGENT_KEY, DEADLINE_KEY, RUN_KEY
from corral.nodes._state import Usage

if TYPE_CHECKING:
    from corral.manifest import AgentPlan

Steps = Generator["Call", Any, Any]


@dataclass(frozen=True, slots=True)
class Inbound:
    """What a piece of work starts from: a validated payload, where it came from, and
    for a subtask the delegator's instruction."""

    schema: str
    source: str
    payload: dict[str, Any]
    instruction: str | None = None


@dataclass(frozen=True, slots=True)
class Work:
    """Who is doing a piece of work, where: a flow step (depth 0) or a subtask."""

    run_id: str
    key: str
    depth: int
    config: RunnableConfig
    task_id: str | None = None
    flags: dict[str, Any] = field(default_factory=dict)
    """What happened on the way (``degraded`` when a fallback answered)."""
    span: Span | None = None
    """The work's span: its model and tool calls' spans nest under it. (Not in
    ``config``: LangChain merges a node's own config back over a merged config.)"""
    repeats: dict[str, int] = field(default_factory=dict)
    """How often each tool call and delegation came in this task (``max_repeats``)."""
    asked: list[str] = field(default_factory=list)
    """The reply keys of the model calls made (or replayed) so far, in order: a call's
    place in the work, with the run and the task key, makes its key (a re-executed task
    replays the calls that finished)."""
    spent: list[Usage] = field(default_factory=list)
    """What each model call that answered used, in order (a fallback adds the failed
    agent's to its own)."""

    @property
    def deadline(self) -> tuple[float, float] | None:
        """The run's deadline (when, how long) if it has one."""
        found = (self.config.get("configurable") or {}).get(DEADLINE_KEY)
        return (float(found[0]), float(found[1])) if found else None


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait this long (a backoff): ``time.sleep`` in sync runs, ``asyncio.sleep`` in async."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Io:
    """Blocking work (storage): done in place in sync runs, on a worker thread in async
    runs, so an async run never blocks its event loop."""

    fn: Callable[[], Any]


def io(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Call:
    """The ``Call`` that runs ``fn(*args, **kwargs)`` as blocking work (see ``Io``)."""
    return Call(Io(partial(fn, *args, **kwargs)))


@dataclass(frozen=True, slots=True)
class Call:
    """One outside call a node needs: a runnable (a model), a plain function, or a pause.

    With a ``timeout``, an async call is cancelled when it passes; a sync call is left
    to finish on its worker thread and its result is dropped (Python cannot cancel it).
    """

    target: Runnable[Any, Any] | Callable[..., Any] | Pause | Io
    argument: Any = None
    config: RunnableConfig | None = None
    timeout: float | None = None

    def run(self) -> Any:
        if isinstance(self.target, Io):
            return self.target.fn()
        if isinstance(self.target, Pause):
            time.sleep(self.target.seconds)
            return None
        if self.timeout is None:
            return self._run()
        pool = ThreadPoolExecutor(max_workers=1)
        future = pool.submit(contextvars.copy_context().run, self._run)
        try:
            done, _ = wait([future], timeout=self.timeout)
            if not done:  # (the call's own TimeoutError, if any, is re-raised below)
                raise CallTimeout(f"no answer within {self.timeout:g} s")
            return future.result()
        finally:
            pool.shutdown(wait=False)

    def _run(self) -> Any:
        if isinstance(self.target, Runnable):
            if getattr(self.target, "func", 0) is None and hasattr(self.target, "coroutine"):
                # a tool of an ``async def`` function: awaited, in a sync run too
                return _finish(self.target.ainvoke(self.argument, self.config))
            return self.target.invoke(self.argument, self.config)
        assert not isinstance(self.target, Pause | Io)
        result = self.target(self.argument)
        if inspect.iscoroutine(result):
            return _finish(result)
        return result

    async def arun(self) -> Any:
        if isinstance(self.target, Io):
            return await asyncio.to_thread(self.target.fn)
        if isinstance(self.target, Pause):
            await asyncio.sleep(self.target.seconds)
            return None
        if self.timeout is None:
            return await self._arun()
        task = asyncio.ensure_future(self._arun())
        done, _ = await asyncio.wait({task}, timeout=self.timeout)
        if not done:
            task.cancel()
            raise CallTimeout(f"no answer within {self.timeout:g} s")
        return task.result()

    async def _arun(self) -> Any:
        if isinstance(self.target, Runnable):
            return await self.target.ainvoke(self.argument, self.config)
        assert not isinstance(self.target, Pause | Io)
        if inspect.iscoroutinefunction(self.target):
            return await self.target(self.argument)
        return await asyncio.to_thread(self.target, self.argument)


class Node(Runnable[Any, Any]):
    """A graph node whose logic is ``steps``; errors of a call are thrown back into it."""

    name: str

    @abstractmethod
    def steps(self, state: Any, config: RunnableConfig) -> Steps:
        """The node's logic: yield ``Call``s, return the node's update."""

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        steps = self.steps(input, config or {})
        step = _advance(steps, None)
        while isinstance(step, Call):
            try:
                result = step.run()
            except Exception as exc:  # handed to the node's logic, which decides
                step = _advance(steps, None, exc)
                continue
            step = _advance(steps, result)
        return step

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        steps = self.steps(input, config or {})
        step = _advance(steps, None)
        while isinstance(step, Call):
            try:
                result = await step.arun()
            except Exception as exc:
                step = _advance(steps, None, exc)
                continue
            except asyncio.CancelledError:
                # The run is torn down: its logic is closed here, not when it is collected,
                # on a worker thread, as its clean-up (a reservation given back) writes.
                await asyncio.to_thread(steps.close)
                raise
            step = _advance(steps, result)
        return step


def _finish(coroutine: Any) -> Any:
    """An async function's result in a sync run: on a loop of its own, on a thread of its
    own when this thread runs a loop already (a sync run called from a notebook cell or a
    coroutine, whose loop waits for it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(contextvars.copy_context().run, asyncio.run, coroutine).result()


def _advance(steps: Steps, result: Any, error: Exception | None = None) -> Any:
    """Resume the node's logic with a call's result (or error): its next call or its end."""
    try:
        return steps.throw(error) if error is not None else steps.send(result)
    except StopIteration as done:
        return done.value


def call_config(config: RunnableConfig, agent: str, run_id: str) -> RunnableConfig:
    """The config of an agent's calls: run and agent in metadata, for tracers and scripts."""
    return merge_configs(
        config, {"metadata": {AGENT_KEY: agent, RUN_KEY: run_id}, "tags": [f"corral:agent:{agent}"]}
    )


class Runner(Protocol):
    """Anything that answers a piece of work (agent and function runners)."""

    plan: AgentPlan

    def answer(self, inbound: Inbound, work: Work) -> Steps: ...


class Delegator(Protocol):
    """A supervisor's delegation: its ``delegate`` tool and one round of subtasks."""

    tool: type[BaseModel]

    def delegate(
        self, args: Any, work: Work, round_no: int
    ) -> Generator[Call, Any, tuple[str, Usage]]: ...
