"""Runs on Temporal workers: ``corral serve --temporal HOST:PORT`` (``create_app(...,
temporal=...)``).

The server does not run the teams' graphs: a run's start, its review decisions and its
cancellation go to the run's workflow (``corral.scale.Dispatcher``) and ``corral worker``
processes run it. What a client reads (thread state, history, status, the review inbox)
comes from the shared workspace, and a run's ``values`` and ``updates`` events are made
from the checkpoints its worker writes there, read as they appear until the workflow
settles (ends, pauses for a review, or is cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.types import Command, StateSnapshot
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from corral.errors import CorralError, InputError, RunError
from corral.graphs import App, RunResult
from corral.scale import Dispatcher, queue_of
from corral.server._jobs import Job, Start, opening
from corral.server._wire import interrupt, plain

MODES = ("values", "updates")
"""The stream modes served on Temporal: what the workspace's checkpoints hold. Token
streams, debug and task events and corral's ``custom`` events are emitted inside the
worker's process, which the server does not see."""


class TemporalRuns:
    """The server's runs, executed on Temporal workers.

    ``launch`` starts a job's run (a new input, a review's decision, or going on from the
    last checkpoint) and fills the job's event log from the workspace; cancelling the
    job's task cancels the run's workflow (unless the server is shutting down: then the
    run goes on, on its workers).
    """

    modes = MODES

    def __init__(self, target: str, *, queue: str | None = None, poll: float = 0.1) -> None:
        self.target = target
        self.queue = queue
        self.poll = poll
        """Seconds between two reads of a running run's checkpoints."""
        self.closing = False
        """Set when the server shuts down: its jobs stop following, the runs go on."""
        self._dispatcher: Dispatcher | None = None

    async def connect(self) -> None:
        """Connect to the Temporal server (a clear ``InputError`` if it cannot)."""
        self._dispatcher = await Dispatcher.connect(self.target)

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("TemporalRuns.connect() was not awaited")
        return self._dispatcher

    def queue_for(self, app: App) -> str:
        """The task queue ``app``'s team's workers serve."""
        return self.queue or queue_of(app.team)

    def launch(
        self,
        job: Job,
        app: App,
        start: Start | Callable[[], Awaitable[Start]],
        before: Job | None = None,
    ) -> asyncio.Task[None]:
        """Drive ``job`` on the workers in a task of the HTTP loop (which owns ``job``)."""
        return asyncio.create_task(self.drive(job, app, start, before))

    async def drive(
        self,
        job: Job,
        app: App,
        start: Start | Callable[[], Awaitable[Start]],
        before: Job | None = None,
    ) -> None:
        """``job``'s life: wait for the run queued ahead (``before``), send the start,
        follow the run's checkpoints into the log until the workflow settles, then
        ``end``. Cancelled, it cancels the workflow and waits until it has."""
        settle: asyncio.Task[RunResult] | None = None
        try:
            start = await opening(job, start, before)
            seen = await _latest(app, job.thread_id)
            if not isinstance(start, dict) and seen is not None:
                await self._current(job, app)
            settle = asyncio.create_task(self.begin(app, job.thread_id, start))
            await self.follow(job, app, settle, seen)
            settle.result()  # raises a refused decision, a failed or cancelled workflow
            # A run that completed, paused, failed or was halted (a rejected review) is a
            # success, as when the graph runs in the server: the thread's status and
            # state say how the run ended.
            job.set_status("success")
        except asyncio.CancelledError:  # cancel, interrupt or rollback; or a shutdown
            if settle is not None and not self.closing:
                await self.cancel(job.thread_id, settle)
            elif settle is not None:
                settle.cancel()
            # A step hears the cancel at its next heartbeat: a run may end before, and
            # its workflow still be cancelled before it returns; the record says which.
            ran = (
                settle is not None
                and settle.done()
                and not settle.cancelled()
                and settle.exception() is None
            ) or await asyncio.to_thread(_ended, app, job.thread_id)
            job.set_status("success" if ran else "interrupted")
        except Exception as exc:  # the client hears why, never a traceback
            self.failed(job, exc)
        finally:
            job.push("end", None)
            job.done.set()

    async def begin(self, app: App, run_id: str, start: Start) -> RunResult:
        """Send the run its start and wait until it settles: an input starts its
        workflow, a review decision (``Command(resume=...)``, already checked against the
        review) is the ``decide`` signal, and nothing starts a workflow that goes on from
        the run's last checkpoint."""
        runs = self.dispatcher
        if isinstance(start, dict):
            return await runs.run(app.team, start, run_id=run_id, queue=self.queue_for(app))
        if isinstance(start, Command):
            value = start.resume if isinstance(start.resume, dict) else {}
            action = value.get("action")
            return await runs.decide(
                run_id,
                approve=action == "approve",
                reject=str(value.get("reason")) if action == "reject" else None,
                edit=value.get("payload") or {} if action == "edit" else None,
            )
        return await runs.resume(run_id, queue=self.queue_for(app))

    async def cancel(self, run_id: str, settle: asyncio.Task[RunResult]) -> None:
        """Cancel the run's workflow and wait until it has ended (its record then says
        ``cancelled``, and its workflow id is free for a run that goes on). A workflow
        not started yet (its start still on its way) is cancelled once it is."""
        for _ in range(100):
            try:
                await self.dispatcher.cancel(run_id)
                break
            except Exception:  # no such workflow yet, or it ended: ``settle`` tells
                if settle.done():
                    break
                await asyncio.sleep(0.1)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(settle), 60)

    async def forget(self, run_id: str) -> None:
        """Before its thread is deleted: cancel the run's workflow if it is still open
        (waiting for a review), and wait until it has ended."""
        with contextlib.suppress(InputError, RunError, RPCError, TimeoutError):
            if await self.dispatcher.status(run_id) == WorkflowExecutionStatus.RUNNING:
                await self.dispatcher.cancel(run_id)
                await asyncio.wait_for(self.dispatcher.settled(run_id), 60)

    async def follow(
        self, job: Job, app: App, settle: asyncio.Task[RunResult], seen: str | None
    ) -> None:
        """Push the run's new checkpoints as ``values`` and ``updates`` events until
        ``settle`` ends (then once more: every checkpoint is written by then), and the
        interrupts it stopped at."""
        while True:
            ended = settle.done()
            found = await _since(app, job.thread_id, seen)
            for parent, snapshot in found:
                self._push(job, app, parent, snapshot)
            if found:
                seen = found[-1][1].config["configurable"]["checkpoint_id"]
            if ended:
                break
            await asyncio.wait({settle}, timeout=self.poll)
        if settle.exception() is not None:
            return
        # Read again: an interrupt is a write on the latest checkpoint, not a new one.
        final = await app.graph.aget_state(app.config(job.thread_id))
        if final.interrupts:
            job.interrupts = [interrupt(i) for i in final.interrupts]
            if "updates" in job.stream_mode:
                job.push("updates", {"__interrupt__": job.interrupts})

    async def _current(self, job: Job, app: App) -> None:
        """The thread's values as a resumed run starts (LangGraph streams them first)."""
        snapshot = await app.graph.aget_state(app.config(job.thread_id))
        job.output = _picked(app, snapshot.values) or {}
        if "values" in job.stream_mode:
            job.push("values", job.output)

    def _push(
        self, job: Job, app: App, parent: StateSnapshot | None, snapshot: StateSnapshot
    ) -> None:
        """One new checkpoint's events, as LangGraph streams them with the flow's output
        channels as its output keys: each task of the step before with what it wrote to
        them (``updates``), then those channels, if the step wrote any (``values``). The
        step before has ended (a newer checkpoint exists): its tasks have their writes."""
        written = False
        for task in parent.tasks if parent is not None else ():
            if task.error is not None:
                continue
            update = _picked(app, task.result)
            written = written or update is not None
            if task.name != "__start__" and "updates" in job.stream_mode:
                job.push("updates", {task.name: update})
        if written:
            job.output = _picked(app, snapshot.values)
            if "values" in job.stream_mode:
                job.push("values", job.output)

    @staticmethod
    def failed(job: Job, exc: BaseException) -> None:
        """The job's error (as the in-process server reports one)."""
        job.error = {"error": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, CorralError) and hasattr(exc, "to_dict"):
            job.error["detail"] = plain(exc.to_dict())
        job.set_status("error")
        job.push("error", job.error)


def check_queue(queue: str | None, teams: int) -> None:
    """One named queue serves one team (a worker serves one team's queue)."""
    if queue is not None and teams != 1:
        raise InputError(
            f"--queue names one team's task queue; {teams} teams are served: leave it out "
            "(each team's runs go to corral-TEAM_NAME)",
            field="queue",
        )


def _picked(app: App, written: Any) -> Any:
    """The flow's output channels in ``written`` (a task's writes or a checkpoint's
    values), as plain data; ``None`` if it holds none of them."""
    keys = app.graph.output_channels
    found = written if isinstance(written, dict) else {}
    if isinstance(keys, str):
        return plain(found[keys]) if keys in found else None
    return plain({k: found[k] for k in keys if k in found}) or None


async def _latest(app: App, run_id: str) -> str | None:
    """The id of the run's latest checkpoint (``None``: it has none yet)."""
    found = await app.checkpointer.aget_tuple(app.config(run_id))
    if found is None:
        return None
    latest: str | None = found.config["configurable"].get("checkpoint_id")
    return latest


async def _since(
    app: App, run_id: str, seen: str | None
) -> list[tuple[StateSnapshot | None, StateSnapshot]]:
    """The run's checkpoints after ``seen``, oldest first, each with the one before it
    (read newest first, a few more at a time until ``seen`` is among them)."""
    if await _latest(app, run_id) == seen:  # one small read while nothing is new
        return []
    limit = 4
    while True:
        history = app.graph.aget_state_history(app.config(run_id), limit=limit)
        found = [snapshot async for snapshot in history]
        ids = [s.config["configurable"]["checkpoint_id"] for s in found]
        if seen in ids or len(found) < limit:
            break
        limit *= 4
    cut = ids.index(seen) if seen in ids else len(found)
    newest = found[:cut][::-1]
    parent = found[cut] if cut < len(found) else None
    return list(zip([parent, *newest[:-1]], newest, strict=True))


def _ended(app: App, run_id: str) -> bool:
    """True if the run's record says it ended by itself (completed, paused, failed or
    halted), not cancelled and not still running."""
    record = app.runs.get(run_id)
    return record is not None and record.status not in ("cancelled", "running")
