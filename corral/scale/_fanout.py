"""One delegation round's fan-out as a Temporal workflow: an activity per subtask.

The supervisor's ``advance`` activity starts it (its id names the run and the round, so a
retried supervisor joins the same fan-out instead of starting the subtasks again) and
waits for its result: every subtask's outcome, in the order given. Each subtask is an
activity on the team's subtask queue, so any worker runs it; at most ``concurrency`` are
scheduled at once. A subtask whose guard halts the run ends the fan-out at once (the
others are cancelled), as a failing ``Send`` task ends an in-process round.
Deterministic code only (it runs in Temporal's sandbox).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from corral.scale._types import FANOUT, SUBTASK, SUBTASKS, FanOut, Job


@workflow.defn(name=FANOUT)
class CorralFanout:
    """Runs each subtask of a round as an activity on any worker; returns the outcomes."""

    def __init__(self) -> None:
        self.halt: dict[str, Any] | None = None

    @workflow.run
    async def run(self, fan: FanOut) -> list[dict[str, Any]]:
        room = asyncio.Semaphore(max(fan.concurrency, 1))
        queue = workflow.info().task_queue + SUBTASKS

        async def one(task: dict[str, Any]) -> dict[str, Any]:
            async with room:
                outcome: dict[str, Any] = await workflow.execute_activity(
                    SUBTASK,
                    Job(fan.run_id, task, fan.deadline),
                    result_type=dict,
                    task_queue=queue,
                    start_to_close_timeout=timedelta(days=7),
                    heartbeat_timeout=timedelta(seconds=fan.heartbeat_seconds),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(milliseconds=200),
                        maximum_interval=timedelta(seconds=10),
                        non_retryable_error_types=["UserError", "InputError"],
                    ),
                )
            if "raise" in outcome and self.halt is None:
                self.halt = outcome
            return outcome

        running = [asyncio.create_task(one(t)) for t in fan.tasks]
        await workflow.wait_condition(
            lambda: self.halt is not None or all(r.done() for r in running)
        )
        if self.halt is not None:  # a guard halted the run: the rest need not run
            for left in running:
                left.cancel()
            return [self.halt]
        return [r.result() for r in running]
