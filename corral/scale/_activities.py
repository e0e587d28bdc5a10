"""The activities a worker runs: advance a run through its graph, record a cancellation.

An activity heartbeats while the graph runs. If its worker dies, Temporal retries it on
another worker once the heartbeat times out; the retry resumes the run from its last
checkpoint, so completed nodes do not run again, a tool call that started is guarded by
its in-doubt record and idempotency key, and a settled model call is not billed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from datetime import datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from temporalio import activity
from temporalio.exceptions import ApplicationError

from corral.errors import GuardTripped, InputError, ReviewPending, RunError, UserError
from corral.graphs import App, RunResult
from corral.keys import HANDOVER_KEY, WORKFLOW_WAIT
from corral.nodes import Fanout, fanning_out
from corral.scale._types import ADVANCE, CANCELLED, Outcome, Step

CANCELLED_MESSAGE = "cancelled: the run's Temporal workflow was cancelled"
COOLDOWN_GUARDS = ("task_rate", "cooldown")


class Steps:
    """One worker's activities, bound to its ``App`` (the team and its workspace)."""

    def __init__(
        self, app: App, *, identity: str | None = None, fanout: Fanout | None = None
    ) -> None:
        self.app = app
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}"
        self.fanout = fanout
        """Where delegation rounds send their subtasks (``None``: they run in-process)."""

    @activity.defn(name=ADVANCE)
    async def advance(self, step: Step) -> Outcome:
        """Run the graph from its last checkpoint until the run ends, pauses or cools."""
        info = activity.info()
        beat = info.heartbeat_timeout.total_seconds() / 3 if info.heartbeat_timeout else 1.0
        beating = asyncio.create_task(_heartbeat(beat))
        try:
            with fanning_out(self.fanout):
                result = await self._go(step, info.attempt)
        except UserError as exc:
            kind = "InputError" if isinstance(exc, InputError) else "UserError"
            raise ApplicationError(str(exc), type=kind, non_retryable=True) from None
        except asyncio.CancelledError:
            # Only the workflow's cancellation cancels the run. A worker shutting down, or
            # an attempt Temporal already gave up on (timed out, so another worker has
            # it), just stops here: the run goes on from its checkpoint elsewhere.
            details = activity.cancellation_details()
            if details is not None and details.cancel_requested:
                await asyncio.to_thread(self.record_cancelled, step.run_id)
            else:  # the run recorded itself cancelled as it stopped: it is not
                await asyncio.to_thread(self.record_running, step.run_id)
            raise
        finally:
            beating.cancel()
        return await asyncio.to_thread(self.outcome, result)

    @activity.defn(name=CANCELLED)
    async def cancelled(self, run_id: str) -> dict[str, Any]:
        """Record that the run was cancelled (unless it completed first)."""
        return await asyncio.to_thread(self.record_cancelled, run_id)

    async def _go(self, step: Step, attempt: int) -> RunResult:
        app = self.app
        record = await asyncio.to_thread(app.runs.get, step.run_id)
        config: RunnableConfig = {"configurable": {HANDOVER_KEY: _handing_over}}
        if record is None and step.input is not None:
            return await app.arun(step.input, run_id=step.run_id, config=config)
        if record is None:
            raise InputError(f"no run {step.run_id!r} in {app.db_path}", field="run_id")
        if step.input is not None and attempt == 1:
            raise InputError(
                f"run {step.run_id!r} already exists ({record.status}); choose another run id",
                field="run_id",
            )
        if record.status == "running" and attempt > 1:
            # The attempt before this one died (Temporal retries an activity only once
            # its heartbeat timed out): Temporal's attempt outranks the run's lease, so
            # this worker stamps itself the run's owner (a new lease) whoever held it.
            # A first attempt takes the run over only if its holder is gone: a run a live
            # process drives (``corral run``, a server) is refused, not driven twice.
            await asyncio.to_thread(app.runs.update, step.run_id, "running")
        decision = step.decision
        if decision is None:
            return await app.aresume(step.run_id, config=config)
        return await app.aresume(
            step.run_id,
            approve=decision.approve,
            reject=decision.reject,
            edit=decision.edit,
            config=config,
        )

    def outcome(self, result: RunResult) -> Outcome:
        """What the workflow waits for after ``result``."""
        data = result.to_dict()
        if result.status == "paused":
            review = next((e.review for e in result.errors if isinstance(e, ReviewPending)), {})
            deadline = review.get("deadline")
            until = None
            if deadline and not review.get("escalated"):
                until = datetime.fromisoformat(str(deadline)).timestamp()
            return self._waits(Outcome(data, "review", until, self.identity))
        trip = next(
            (
                e
                for e in result.errors
                if isinstance(e, GuardTripped) and e.guard in COOLDOWN_GUARDS
            ),
            None,
        )
        if result.status == "halted" and trip is not None:
            # (a cooldown that already ended, say while a fan-out wound down: go on now)
            until = self.app.board.cooldown_until() or trip.until
            if until is not None:
                return self._waits(Outcome(data, "cooldown", until, self.identity))
        return Outcome(data, "", None, self.identity)

    def _waits(self, outcome: Outcome) -> Outcome:
        """Record that the run waits in its workflow (``held_by_workflow``), so it is not
        resumed elsewhere meanwhile (``corral resume`` without ``--temporal``)."""
        run_id = str(outcome.result["run_id"])
        record = self.app.runs.get(run_id)
        if record is not None:
            data = {"for": outcome.wait, "updated_at": record.updated_at, "by": self.identity}
            self.app.events.record(run_id, WORKFLOW_WAIT, None, data)
        return outcome

    def record_running(self, run_id: str) -> None:
        """Mark a run this worker stopped (not cancelled: it shuts down, or Temporal gave
        the attempt to another) ``running`` again, so neither ``corral runs`` nor prune
        takes it for ended; the workflow's next attempt goes on with it."""
        record = self.app.runs.get(run_id)
        if record is not None and record.status == "cancelled":
            self.app.runs.update(run_id, "running", errors=[])

    def record_cancelled(self, run_id: str) -> dict[str, Any]:
        """Mark the run ``cancelled`` (with its error) and record a ``run_cancelled`` event."""
        app = self.app
        record = app.runs.get(run_id)
        if record is None:
            return {"run_id": run_id, "status": "cancelled"}
        if record.status == "completed":
            return {"run_id": run_id, "status": "completed", "output": record.output}
        error = RunError(CANCELLED_MESSAGE)
        said = [e.get("message") for e in record.errors]
        if said != [CANCELLED_MESSAGE]:  # once, whether the activity or the workflow saw it
            app.runs.update(run_id, "cancelled", errors=[error.to_dict()])
            app.events.record(run_id, "run_cancelled", None, {"by": "temporal"})
        return RunResult.of(
            record.usage,
            run_id=run_id,
            status="cancelled",
            output=record.output,
            path=record.path,
            errors=[error],
        ).to_dict()


def _handing_over() -> bool:
    """Whether this activity is cancelled by its worker's shutdown or by Temporal giving
    the attempt to another worker, not by the workflow's cancellation: the run goes on
    elsewhere, so its record stays ``running`` (prune and ``corral runs`` never see it
    ``cancelled`` in between)."""
    details = activity.cancellation_details()
    return details is not None and not details.cancel_requested


async def _heartbeat(every: float) -> None:
    """Tell Temporal this activity is alive (and hear a cancellation) until cancelled."""
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)
