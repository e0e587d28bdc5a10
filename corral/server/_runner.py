"""The runs' own event loop, in a thread of its own (``ThreadExecutor``, for
``workers=0``).

The HTTP loop only serves I/O (requests, SSE, health checks); the teams' graphs run on
this loop, so the CPU work of many runs does not queue ahead of a ``GET /ok`` (they still
share the process's GIL: ``ProcessPool`` runs them in other processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig

from corral.graphs import App
from corral.server._jobs import Job, Start, chunks, error_of

T = TypeVar("T")


class Runner:
    """An event loop in a daemon thread that runs coroutines for another loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _started(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:  # made here, run there: call_soon_threadsafe queues till then
            self._loop = loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._serve, args=(loop,), name="corral-runs", daemon=True
            )
            self._thread.start()
        return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro``'s result, run on the runs' loop. Cancelling the caller cancels the
        coroutine there and waits for it to end (its ``finally`` blocks run first)."""
        loop = self._started()
        home = asyncio.get_running_loop()
        outcome: asyncio.Future[T] = home.create_future()
        task: list[asyncio.Task[T]] = []

        def settle(done: asyncio.Task[T]) -> None:
            if outcome.done():
                return
            if done.cancelled():
                outcome.cancel()
            elif (exc := done.exception()) is not None:
                outcome.set_exception(exc)
            else:
                outcome.set_result(done.result())

        def begin() -> None:
            task.append(loop.create_task(coro))
            task[0].add_done_callback(lambda t: home.call_soon_threadsafe(settle, t))

        def cancel() -> None:  # begin() ran first: the loop's callbacks are FIFO
            task[0].cancel()

        loop.call_soon_threadsafe(begin)
        try:
            return await asyncio.shield(outcome)
        except asyncio.CancelledError:
            loop.call_soon_threadsafe(cancel)
            with contextlib.suppress(asyncio.CancelledError):
                await outcome
            raise

    async def stop(self) -> None:
        """Stop the loop (its runs were ended first) and wait for its thread."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)


class ThreadExecutor:
    """Runs' graphs on ``Runner``'s loop, in a thread of this process."""

    def __init__(self) -> None:
        self.runner = Runner()

    async def begin(self) -> None:
        """Nothing to get ready: the thread starts with the first run."""

    async def run(
        self, job: Job, app: App, start: Start, config: RunnableConfig
    ) -> dict[str, Any] | None:
        """See ``Executor.run``."""
        home = asyncio.get_running_loop()

        async def stream() -> None:
            async for mode, data in chunks(app, start, config, job.stream_mode, job.run_id):
                home.call_soon_threadsafe(job.take, mode, data)

        try:
            await self.runner.run(stream())
        except Exception as exc:  # the run failed: its error, as the client reads it
            return error_of(exc)
        return None

    async def metrics(self) -> list[bytes]:
        """None: the runs' metrics are this process's."""
        return []

    async def stop(self) -> None:
        await self.runner.stop()
