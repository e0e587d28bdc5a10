"""``ProcessPool``: the runs' graphs in N worker processes, so the HTTP process only
serves I/O and no run's CPU work holds its GIL.

The HTTP process keeps the jobs and their event logs; it sends a run (run id, team,
start, config, stream modes) to the least-loaded worker over a pipe, and the worker
sends back the stream's chunks (plain JSON data) and the run's end. A cancel goes down
the pipe. A worker that dies is started again and its runs go on, each once: one that
made no checkpoint since it began starts again from what it was given; any other goes on
from its last checkpoint (completed steps do not run again, recorded tool calls are not
repeated). Every worker opens the teams and the workspace itself (SQLite in WAL mode, or
Postgres: both serve many processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from corral.graphs import App
from corral.server._jobs import Job, Start
from corral.server._worker_proc import main

_UNSEEN = object()
"""A run's checkpoint before its worker said where it began."""


@dataclass
class _Pending:
    """A run sent to a worker, until its end comes back."""

    job: Job
    app: App
    start: Start
    config: RunnableConfig
    outcome: asyncio.Future[dict[str, Any] | None]
    began_at: Any = _UNSEEN
    cancelled: bool = False


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: asyncio.Future[int]
    runs: dict[str, _Pending] = field(default_factory=dict)
    pid: int = 0


class ProcessPool:
    """Runs' graphs in ``size`` worker processes (multiprocessing, spawn)."""

    def __init__(
        self, apps: Sequence[App], files: Sequence[str | Path], db: str | Path | None, size: int
    ) -> None:
        self.teams = list(files)
        """The team files each worker loads (``team_files``)."""
        self.fingerprints = {a.plan.name: a.plan.fingerprint for a in apps}
        """The teams as this process compiled them: a worker must run the same."""
        self.db = db
        self.size = size
        self.workers: list[_Worker] = []
        self.restarts = 0
        """Workers started again after one died."""
        self._context = multiprocessing.get_context("spawn")
        self._tokens = itertools.count()
        self._asked: dict[int, asyncio.Future[bytes]] = {}
        self._closing = False
        self._sending: set[asyncio.Task[None]] = set()

    async def begin(self) -> None:
        """Start the workers and wait until each has opened the teams."""
        if not self.workers:
            self.workers = [self._spawn() for _ in range(self.size)]
        await asyncio.gather(*(w.ready for w in self.workers))

    def _spawn(self) -> _Worker:
        loop = asyncio.get_running_loop()
        mine, theirs = self._context.Pipe()
        process = self._context.Process(
            target=main, args=(theirs, self.teams, self.db), name="corral-worker", daemon=True
        )
        process.start()
        theirs.close()  # so that its death is an end of file here
        worker = _Worker(process, mine, loop.create_future())
        loop.add_reader(mine.fileno(), self._read, worker)
        # uvloop made the pipe non-blocking: a message larger than the pipe's buffer would
        # be sent or read in part. Blocking, each is whole (the worker's reader thread
        # takes in what is sent as it comes; a readable pipe holds a message being sent).
        os.set_blocking(mine.fileno(), True)
        return worker

    async def run(
        self, job: Job, app: App, start: Start, config: RunnableConfig
    ) -> dict[str, Any] | None:
        """See ``Executor.run``."""
        await self.begin()
        outcome: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        pending = _Pending(job, app, start, config, outcome)
        if not self.workers:
            return {"error": "WorkerLost", "message": "no worker process is running"}
        worker = min(self.workers, key=lambda w: len(w.runs))  # the least loaded
        self._send(worker, pending, start)
        try:
            return await asyncio.shield(outcome)
        except asyncio.CancelledError:
            if not outcome.done():
                pending.cancelled = True
                for each in self.workers:
                    if job.run_id in each.runs:
                        self._tell(each, ("cancel", job.run_id))
                with contextlib.suppress(asyncio.CancelledError):
                    await outcome
            raise

    def _send(self, worker: _Worker, pending: _Pending, start: Start) -> None:
        job = pending.job
        worker.runs[job.run_id] = pending
        message = ("run", job.run_id, pending.app.plan.name, start, pending.config)
        self._tell(worker, (*message, job.stream_mode))

    def _tell(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):  # it died: its end of file says so
            worker.conn.send(message)

    def _read(self, worker: _Worker) -> None:
        """Take what a worker sent (on the HTTP loop)."""
        try:
            while worker.conn.poll():
                self._take(worker, worker.conn.recv())
        except (EOFError, OSError):
            self._died(worker)

    def _take(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "chunk":
            pending = worker.runs.get(message[1])
            if pending is not None:
                pending.job.take(message[2], message[3])
        elif kind == "begun" and message[1] in worker.runs:
            worker.runs[message[1]].began_at = message[2]
            worker.runs[message[1]].job.worker = worker.pid
        elif kind == "end":
            pending = worker.runs.pop(message[1], None)
            if pending is not None and not pending.outcome.done():
                pending.outcome.set_result(message[2])
        elif kind == "ready" and not worker.ready.done():
            worker.pid = message[1]
            if message[2] == self.fingerprints:
                worker.ready.set_result(worker.pid)
            else:  # a team file changed since this process read it: not that worker
                changed = sorted(n for n, f in message[2].items() if self.fingerprints.get(n) != f)
                worker.ready.set_exception(
                    RuntimeError(f"the team files of {changed} changed since the server started")
                )
                self._tell(worker, ("stop",))
        elif kind == "metrics":
            asked = self._asked.pop(message[1], None)
            if asked is not None and not asked.done():
                asked.set_result(message[2])

    def _died(self, worker: _Worker) -> None:
        """A worker ended: start another, and send its runs again (each goes on once)."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.conn.fileno())
        worker.conn.close()
        worker.process.join(timeout=0)
        if not worker.ready.done():  # it could not open the teams: not started again
            code = worker.process.exitcode
            worker.ready.set_exception(RuntimeError(f"a worker process ended at start ({code})"))
        failed = worker.ready.exception()
        lost = str(failed) if failed is not None else None
        if lost is not None or self._closing or worker not in self.workers:
            if worker in self.workers and not self._closing:
                self.workers.remove(worker)
            for pending in worker.runs.values():
                if not pending.outcome.done():
                    error = {"error": "WorkerLost", "message": lost} if lost else None
                    pending.outcome.set_result(error)
            return
        self.restarts += 1
        spare = self._spawn()
        self.workers[self.workers.index(worker)] = spare
        for pending in worker.runs.values():
            task = loop.create_task(self._again(spare, pending))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _again(self, spare: _Worker, pending: _Pending) -> None:
        """Send a dead worker's run to ``spare`` once it is ready: from its start if it
        made no checkpoint since it began, else on from its last checkpoint."""
        if pending.cancelled:
            pending.outcome.set_result(None)
            return
        try:
            await spare.ready
        except RuntimeError as exc:
            pending.outcome.set_result({"error": "WorkerLost", "message": str(exc)})
            return
        app, thread_id = pending.app, pending.job.thread_id
        snapshot = await app.graph.aget_state(app.config(thread_id))
        now = (snapshot.config or {}).get("configurable", {}).get("checkpoint_id")
        start = pending.start if pending.began_at in (_UNSEEN, now) else None
        self._send(spare, pending, start)

    async def metrics(self) -> list[bytes]:
        """Each live worker's Prometheus text."""
        loop = asyncio.get_running_loop()
        asked = []
        for worker in self.workers:
            if worker.ready.done() and not worker.ready.exception():
                token = next(self._tokens)
                self._asked[token] = loop.create_future()
                asked.append(self._asked[token])
                self._tell(worker, ("metrics", token))
        done, _ = await asyncio.wait(asked, timeout=5) if asked else (set(), set())
        return [f.result() for f in asked if f in done]

    async def stop(self) -> None:
        """Stop the workers (their runs were ended first), killing one that lingers."""
        self._closing = True
        for worker in self.workers:
            self._tell(worker, ("stop",))
        for worker in self.workers:
            await asyncio.to_thread(worker.process.join, 10)
            if worker.process.is_alive():
                worker.process.kill()
                await asyncio.to_thread(worker.process.join, 10)
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(worker.conn.fileno())
            worker.conn.close()
        self.workers = []
