"""Submitting runs to Temporal workers, deciding their reviews, cancelling them."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError

from corral.errors import InputError, RunError
from corral.graphs import RunResult, check_run_id, new_run_id
from corral.manifest import TeamSpec
from corral.nodes import Usage, validate
from corral.scale._types import WORKFLOW, Decision, Start, State
from corral.scale._worker import connect_client, queue_of

PREFIX = "corral-run-"
"""A run's workflow id is this plus its run id."""


def result_of(data: Mapping[str, Any]) -> RunResult:
    """The ``RunResult`` a ``to_dict()`` described (errors typed again)."""
    usage = dict(data["usage"])
    return RunResult(
        run_id=data["run_id"],
        status=data["status"],
        output=data.get("output"),
        path=list(data.get("path") or []),
        usage=Usage(
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            llm_calls=usage["llm_calls"],
        ),
        errors=[RunError.from_dict(e) for e in data.get("errors") or []],
        guards_tripped=list(data.get("guards_tripped") or []),
        tasks_created=int(data.get("tasks_created") or 0),
        cost_usd=usage.get("cost_usd"),
    )


class Dispatcher:
    """Runs on Temporal workers, from anywhere that reaches the Temporal server.

    ``submit`` starts a run's workflow on its team's task queue (``corral worker`` serves
    it); ``settled`` waits until the run ends or pauses for a person; ``decide`` sends a
    paused run its review decision (the ``decide`` signal); ``cancel`` cancels the run.
    """

    def __init__(self, client: Client, *, heartbeat_seconds: float = 10.0) -> None:
        self.client = client
        self.heartbeat_seconds = heartbeat_seconds

    @classmethod
    async def connect(
        cls, target: str, *, namespace: str = "default", heartbeat_seconds: float = 10.0
    ) -> Dispatcher:
        """Connect to the Temporal server at ``target`` (``HOST:PORT``)."""
        client = await connect_client(target, namespace=namespace)
        return cls(client, heartbeat_seconds=heartbeat_seconds)

    async def submit(
        self,
        team: TeamSpec,
        input: Mapping[str, Any] | BaseModel,
        *,
        run_id: str | None = None,
        queue: str | None = None,
    ) -> str:
        """Start a run of ``team`` on ``input`` (validated here first); its run id."""
        run_id = check_run_id(run_id) if run_id is not None else new_run_id()
        plan = team.plan
        payload, errors = validate(plan.schemas[plan.input_name], input)
        if payload is None:
            raise InputError(
                f"input is not a valid {plan.input_name}: " + "; ".join(errors),
                field=errors[0].split(":")[0],
            )
        start = Start(run_id, payload, heartbeat_seconds=self.heartbeat_seconds)
        try:
            await self.client.start_workflow(
                WORKFLOW,
                start,
                id=PREFIX + run_id,
                task_queue=queue or queue_of(team),
            )
        except WorkflowAlreadyStartedError:
            raise InputError(
                f"run {run_id!r} is already open on Temporal (running, or paused for a "
                "review); choose another run id",
                field="run_id",
            ) from None
        except RPCError as exc:
            raise InputError(f"run {run_id!r} cannot start: {exc}", field="run_id") from None
        return run_id

    async def resume(self, run_id: str, *, queue: str) -> RunResult:
        """Resume a failed, halted or crashed run on a worker serving ``queue``, from its
        last checkpoint; returns once it ends or pauses."""
        start = Start(check_run_id(run_id), None, heartbeat_seconds=self.heartbeat_seconds)
        try:
            await self.client.start_workflow(WORKFLOW, start, id=PREFIX + run_id, task_queue=queue)
        except WorkflowAlreadyStartedError:
            raise InputError(
                f"run {run_id!r} is still open on Temporal (running, or paused for a review: "
                "decide it); wait for it to end",
                field="run_id",
            ) from None
        except RPCError as exc:
            raise InputError(f"run {run_id!r} cannot resume now: {exc}", field="run_id") from None
        return await self.settled(run_id)

    async def run(
        self,
        team: TeamSpec,
        input: Mapping[str, Any] | BaseModel,
        *,
        run_id: str | None = None,
        queue: str | None = None,
    ) -> RunResult:
        """Submit a run and wait until it ends or pauses for a person."""
        return await self.settled(await self.submit(team, input, run_id=run_id, queue=queue))

    async def settled(self, run_id: str) -> RunResult:
        """The run's result once it ends or pauses for a person.

        Raises:
            InputError: a refused decision (the run stays paused) or an unknown run.
            RunError: the run was cancelled, or its workflow failed.
        """
        handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(PREFIX + run_id)
        state = None
        with contextlib.suppress(WorkflowUpdateFailedError, RPCError):
            state = await handle.execute_update("settled", result_type=State)
        if state is not None and state.refused:
            raise InputError(f"the decision was refused: {state.refused}", field="decision")
        if state is not None and state.state == "paused" and state.result is not None:
            return result_of(state.result)
        try:
            return result_of(await handle.result())
        except WorkflowFailureError as exc:
            if isinstance(exc.cause, CancelledError):
                raise RunError(f"run {run_id} was cancelled") from exc.cause  # (the CLI's exit 6)
            cause: BaseException | None = exc.cause
            while isinstance(cause, FailureError) and cause.cause is not None:
                cause = cause.cause  # the activity's own error, under its ActivityError
            if isinstance(cause, ApplicationError) and cause.type == "InputError":
                refused = str(cause).removeprefix("InputError: ")  # as an embedded run says
                raise InputError(refused) from None
            raise RunError(f"run {run_id} failed on its worker: {cause}") from None
        except RPCError as exc:
            raise InputError(f"no Temporal run {run_id!r}: {exc}", field="run_id") from None

    async def decide(
        self,
        run_id: str,
        *,
        approve: bool = False,
        reject: str | None = None,
        edit: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Decide a paused run's review (one of approve, reject, edit); the run goes on
        on any worker. Returns once it ends or pauses again."""
        decision = Decision(approve, reject, dict(edit) if edit is not None else None)
        if sum((approve, reject is not None, edit is not None)) != 1:
            raise InputError("decide with one of approve, reject or edit", field="decision")
        state = await self.state(run_id)
        if state.state != "paused":
            raise InputError(
                f"run {run_id!r} is {state.state}, not waiting for a decision", field="run_id"
            )
        handle = self.client.get_workflow_handle(PREFIX + run_id)
        await handle.signal("decide", decision)
        return await self.settled(run_id)

    async def state(self, run_id: str) -> State:
        """Where the run's workflow is (the ``state`` query)."""
        handle = self.client.get_workflow_handle(PREFIX + run_id)
        try:
            state: State = await handle.query("state", result_type=State)
            return state
        except RPCError as exc:
            raise InputError(f"no Temporal run {run_id!r}: {exc}", field="run_id") from None

    async def cancel(self, run_id: str) -> None:
        """Cancel the run and return once its workflow has ended: a running activity
        hears it at its next heartbeat; the run is recorded cancelled. (A ``settled``
        asked at once could otherwise still see the review it was waiting for.)"""
        handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(PREFIX + run_id)
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()

    async def status(self, run_id: str) -> WorkflowExecutionStatus | None:
        """The Temporal status of the run's workflow."""
        described = await self.client.get_workflow_handle(PREFIX + run_id).describe()
        return described.status
