"""One delegation round's fan-out as a Temporal workflow: activities run its subtasks.

The supervisor's ``advance`` activity starts it (its id names the run and the round, so a
retried supervisor joins the same fan-out instead of starting the subtasks again) and
waits for its result: every subtask's outcome, in the order given. The subtasks go to
the team's subtask queue as at most ``activities`` activities (one subtask each, or
batches of them in a large round, run together as a round runs them), so any worker
runs them; fewer, larger activities keep a large round's history and the server's work
small. A subtask whose guard halts the run ends the fan-out at once (the rest are
cancelled), as a failing ``Send`` task ends an in-process round. Deterministic code,
importing only plain dataclasses: it needs no sandbox.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from corral.scale._types import FANOUT, SUBTASK, SUBTASKS, FanOut, Job, supervised


@workflow.defn(name=FANOUT, sandboxed=False)
class CorralFanout:
    """Runs a round's subtasks as activities on any worker; returns their outcomes."""

    def __init__(self) -> None:
        self.halt: dict[str, Any] | None = None

    @workflow.run
    async def run(self, fan: FanOut) -> list[dict[str, Any]]:
        queue = workflow.info().task_queue + SUBTASKS
        size = max(1, -(-len(fan.tasks) // max(fan.activities, 1)))
        batches = [fan.tasks[i : i + size] for i in range(0, len(fan.tasks), size)]

        async def one(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            outcomes: list[dict[str, Any]] = await workflow.execute_activity(
                SUBTASK,
                Job(fan.run_id, batch, fan.deadline),
                result_type=list,
                task_queue=queue,
                **supervised(fan.heartbeat_seconds, "UserError", "InputError"),
            )
            halted = next((o for o in outcomes if "raise" in o), None)
            if halted is not None and self.halt is None:
                self.halt = halted
            return outcomes

        running = [asyncio.create_task(one(b)) for b in batches]
        await workflow.wait_condition(
            lambda: self.halt is not None or all(r.done() for r in running)
        )
        if self.halt is not None:  # a guard halted the run: the rest need not run
            for left in running:
                left.cancel()
            return [self.halt]
        return [outcome for r in running for outcome in r.result()]
