"""A run as a Temporal workflow: activities advance the graph; the workflow waits between.

Deterministic code only (it runs in Temporal's sandbox and is replayed): each activity
runs the compiled graph from its last checkpoint until the run ends, pauses for a review
or is halted by the creation cooldown; a review then waits for a ``decide`` signal (or
the review's deadline) and a cooldown for a durable timer, holding no worker.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from corral.scale._types import (
        ADVANCE,
        CANCELLED,
        WORKFLOW,
        Decision,
        Outcome,
        Start,
        State,
        Step,
        supervised,
    )

REFUSED = "InputError"
"""The error type of a decision the run refused (bad edit, review past its deadline)."""


@workflow.defn(name=WORKFLOW)
class CorralRun:
    """One corral run. Signal ``decide``; query ``state``; update ``settled`` (returns when
    the run pauses or ends)."""

    def __init__(self) -> None:
        self.now = State()
        self.decision: Decision | None = None

    @workflow.run
    async def run(self, start: Start) -> dict[str, Any]:
        step = Step(start.run_id, input=start.input)
        try:
            while True:
                self.now.state = "running"
                outcome = await self._advance(start, step)
                if outcome is None:  # the decision was refused; the run is still paused
                    step = Step(start.run_id, decision=await self._decided(None))
                    continue
                self.now.result = outcome.result
                if outcome.wait == "review":
                    step = Step(start.run_id, decision=await self._decided(outcome.until))
                elif outcome.wait == "cooldown":
                    self.now.state = "cooling"
                    left = (outcome.until or 0.0) - workflow.now().timestamp()
                    await workflow.sleep(max(left, 0.0) + 0.5)
                    step = Step(start.run_id)
                else:
                    self.now.state = "done"
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    return outcome.result
        except asyncio.CancelledError:
            self.now.state = "cancelled"
            # The run's record says so, whether an activity was running it or not.
            self.now.result = await workflow.execute_activity(
                CANCELLED,
                start.run_id,
                result_type=dict,
                start_to_close_timeout=timedelta(seconds=60),
            )
            raise

    async def _advance(self, start: Start, step: Step) -> Outcome | None:
        """Run one activity; ``None`` if it refused the decision it was given."""
        self.now.activities += 1
        try:
            outcome: Outcome = await workflow.execute_activity(
                ADVANCE,
                step,
                result_type=Outcome,
                **supervised(
                    start.heartbeat_seconds, "UserError", REFUSED, attempts=start.max_attempts
                ),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as exc:
            cause = exc.cause
            refused = isinstance(cause, ApplicationError) and cause.type == REFUSED
            if step.decision is not None and refused:
                self.now.refused = str(cause.message)  # type: ignore[union-attr]
                return None
            raise
        self.now.workers.append(outcome.worker)
        return outcome

    async def _decided(self, until: float | None) -> Decision:
        """Wait for a decision; past the review's deadline ``until``, an empty one (the
        review's ``on_timeout`` policy decides)."""
        self.now.state = "paused"
        timeout = None
        if until is not None:
            timeout = max(until - workflow.now().timestamp(), 0.0)
        try:
            await workflow.wait_condition(lambda: self.decision is not None, timeout=timeout)
        except TimeoutError:
            return Decision()
        decision, self.decision = self.decision, None
        assert decision is not None
        return decision

    @workflow.signal
    def decide(self, decision: Decision) -> None:
        """A person's decision on the paused run's review (ignored unless it is paused)."""
        if self.now.state == "paused" and decision.given:
            self.decision = decision
            self.now.state = "deciding"
            self.now.refused = None

    @workflow.query
    def state(self) -> State:
        """Where the run is: its state, last result, refused decision, workers used."""
        return self.now

    @workflow.update
    async def settled(self) -> State:
        """Return once the run waits for a person, or has ended."""
        await workflow.wait_condition(lambda: self.now.state in ("paused", "done", "cancelled"))
        return self.now
