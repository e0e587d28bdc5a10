"""Delegated subtasks on any worker: a round's fan-out, and the activity per subtask.

Within a worker's activities, a delegation round does not run its subtasks in-process:
``Subtasks.fanout`` starts the round's fan-out workflow (``CorralFanout``, its id the
run's and the round's) and waits for every outcome, which the round's join then records
as it always does. Each ``corral.subtask`` activity (on the team's subtask queue) holds
one subtask, or a batch of a large round's: the worker that takes it runs the round
with those tasks, records their outcomes on the board, and says which worker ran them.

Retries: a supervisor's activity retried on another worker joins the same fan-out (same
workflow id) and reads the subtasks already done from the board; a subtask activity
retried after its worker died returns the outcome its first attempt recorded, if it got
that far, and otherwise runs the subtask again from its claimed task.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from corral.errors import InputError, RunError, UserError
from corral.graphs import App
from corral.keys import DEADLINE_KEY
from corral.nodes import fanning_out
from corral.nodes import outcomes as board_rows
from corral.scale._activities import _heartbeat
from corral.scale._types import FANOUT, SUBTASK, FanOut, Job

FANOUT_PREFIX = "corral-fanout-"
"""A round's fan-out workflow id is this, the run id, ``/`` and the round's key."""


class Subtasks:
    """One worker's side of fan-outs: it starts and joins them, and runs subtasks."""

    def __init__(self, app: App, client: Client, *, queue: str, identity: str) -> None:
        self.app = app
        self.client = client
        self.queue = queue
        self.identity = identity
        self.round = round_of(app)

    async def fanout(self, ask: dict[str, Any]) -> list[dict[str, Any]]:
        """Run a round's subtasks on any worker; their outcomes, in the order asked.

        Raises:
            RunError: a subtask's guard halted the run, or the fan-out failed.
        """
        run_id, tasks = ask["run_id"], ask["tasks"]
        name = f"{FANOUT_PREFIX}{run_id}/{ask['round']}"
        fan = FanOut(
            run_id,
            tasks,
            list(ask["deadline"]) if ask.get("deadline") else None,
            heartbeat_seconds=_heartbeat_seconds(),
        )
        handle: WorkflowHandle[Any, Any]
        try:
            handle = await self.client.start_workflow(
                FANOUT,
                fan,
                id=name,
                task_queue=self.queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            )
        except WorkflowAlreadyStartedError:  # a retried supervisor: join the same fan-out
            handle = self.client.get_workflow_handle(name)
        try:
            outcomes: list[dict[str, Any]] = await handle.result()
        except asyncio.CancelledError:
            if _cancelled_for_good():  # the run was cancelled, or its deadline passed
                with contextlib.suppress(RPCError):
                    await asyncio.shield(handle.cancel())
            raise
        except WorkflowFailureError as exc:
            raise RunError(f"the subtasks of round {ask['round']!r} failed: {exc.cause}") from None
        for outcome in outcomes:
            if "raise" in outcome:
                raise RunError.from_dict(outcome["raise"])
        found = {o["task_id"]: o for o in outcomes}
        results = []
        for task in tasks:
            outcome = dict(found[task["task_id"]])
            outcome.pop("worker", None)
            results.append(outcome)
        return results

    @activity.defn(name=SUBTASK)
    async def subtask(self, job: Job) -> list[dict[str, Any]]:
        """Run a batch of claimed subtasks (but those an earlier attempt finished) and
        record their outcomes on the board."""
        info = activity.info()
        every = info.heartbeat_timeout.total_seconds() / 3 if info.heartbeat_timeout else 1.0
        beating = asyncio.create_task(_heartbeat(every))
        try:
            return await self._run(job)
        except UserError as exc:
            kind = "InputError" if isinstance(exc, InputError) else "UserError"
            raise ApplicationError(str(exc), type=kind, non_retryable=True) from None
        finally:
            beating.cancel()

    async def _run(self, job: Job) -> list[dict[str, Any]]:
        board, me = self.app.board, {"worker": self.identity}
        held = await asyncio.to_thread(lambda: [board.get(t["task_id"]) for t in job.tasks])
        outcomes, todo = [], []
        for task, found in zip(job.tasks, held, strict=True):
            mine = {"task_id": task["task_id"], "assignee": task["assignee"], **me}
            if found is not None and found.status == "done":  # an earlier attempt did it
                outcomes.append({**mine, "status": "done", "result": found.result, "reused": True})
            elif found is not None and found.status == "failed":
                outcomes.append({**mine, "status": "failed", "error": found.error, "reused": True})
            else:
                todo.append(task)
        if not todo:
            return outcomes
        if self.round is None:
            raise InputError(
                f"team {self.app.team.name!r} has no delegating agent to run its subtasks",
                field="task",
            )
        configurable: dict[str, Any] = {"thread_id": f"{job.run_id}:{todo[0]['task_id']}"}
        if job.deadline:
            configurable[DEADLINE_KEY] = list(job.deadline)
        config: RunnableConfig = {"configurable": configurable}
        try:
            # Their own delegations run here, in this activity: a subtask slot waiting on
            # a fan-out of its own could leave no slot for that fan-out's subtasks.
            with fanning_out(None):
                state = await self.round.ainvoke({"tasks": todo}, config, durability="exit")
        except RunError as exc:  # a guard under ``halt``: the supervisor's run stops
            return [{"task_id": todo[0]["task_id"], "raise": exc.to_dict(), **me}]
        ran: list[dict[str, Any]] = state["results"]
        await asyncio.to_thread(board.finish_many, job.run_id, board_rows(ran))
        return outcomes + [{**o, **me} for o in ran]


def round_of(app: App) -> Runnable[Any, Any] | None:
    """The delegation round graph ``app``'s delegating agents share (``None``: no agent
    delegates). Every supervisor's ``Delegation`` holds the same one."""
    for node in app.graph.nodes.values():
        runner = getattr(node.bound, "runner", None)
        delegation = getattr(runner, "delegation", None)
        found = getattr(delegation, "round", None)
        if isinstance(found, Runnable):
            return found
    return None


def _heartbeat_seconds() -> float:
    """The heartbeat timeout of the activity waiting for a fan-out (10 s outside one)."""
    with contextlib.suppress(RuntimeError):
        timeout = activity.info().heartbeat_timeout
        if timeout:
            return timeout.total_seconds()
    return 10.0


def _cancelled_for_good() -> bool:
    """True unless the activity waiting is cancelled only because its worker is going
    away or Temporal gave its attempt to another worker (which joins the same fan-out)."""
    try:
        details = activity.cancellation_details()
    except RuntimeError:
        return True
    if details is None:
        return True  # not the activity's cancellation: the run's deadline cut the wait
    return bool(details.cancel_requested)
