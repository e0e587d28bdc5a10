"""A Temporal worker for one team: it runs that team's run workflows and activities."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from corral.errors import InputError
from corral.graphs import App
from corral.manifest import TeamSpec
from corral.scale._activities import Steps
from corral.scale._fanout import CorralFanout
from corral.scale._subtasks import Subtasks
from corral.scale._types import SUBTASKS
from corral.scale._workflow import CorralRun


def queue_of(team: TeamSpec) -> str:
    """The task queue a team's runs go to unless one is named."""
    return f"corral-{team.name}"


def runner() -> SandboxedWorkflowRunner:
    """Temporal's workflow sandbox, with corral passed through: the workflow module imports
    only plain dataclasses, and corral's package (with LangGraph under it) is loaded once
    per process instead of once per workflow run."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("corral")
    )


def worker(
    client: Client,
    app: App,
    *,
    queue: str,
    max_runs: int = 50,
    subtasks: Subtasks | None = None,
) -> Worker:
    """A worker polling ``queue`` that advances at most ``max_runs`` runs at once; with
    ``subtasks``, its delegation rounds fan out to ``subtask_worker``s (else in-process)."""
    steps = Steps(
        app,
        identity=client.identity,
        fanout=subtasks.fanout if subtasks is not None else None,
    )
    return Worker(
        client,
        task_queue=queue,
        workflows=[CorralRun, CorralFanout],
        activities=[steps.advance, steps.cancelled],
        workflow_runner=runner(),
        max_concurrent_activities=max_runs,
    )


def subtask_worker(subtasks: Subtasks, *, max_subtasks: int = 100) -> Worker:
    """A worker running at most ``max_subtasks`` delegated subtasks at once, from the
    subtask queue of ``subtasks.queue`` (its own slots: a supervisor waiting for its
    fan-out holds a run slot, never one its subtasks need)."""
    return Worker(
        subtasks.client,
        task_queue=subtasks.queue + SUBTASKS,
        activities=[subtasks.subtask],
        max_concurrent_activities=max_subtasks,
    )


async def connect_client(target: str, *, namespace: str = "default") -> Client:
    """A Temporal client of the server at ``target``; ``InputError`` naming --temporal if
    the address is not one (a port out of range) or nothing answers there."""
    try:
        return await Client.connect(target, namespace=namespace)
    except (RuntimeError, ValueError) as exc:
        raise InputError(
            f"cannot reach a Temporal server at {target}: {exc}. Start one (for a "
            "try-out: temporal server start-dev) or fix --temporal",
            field="temporal",
        ) from None


async def serve(
    app: App,
    target: str,
    *,
    queue: str | None = None,
    namespace: str = "default",
    max_runs: int = 50,
    max_subtasks: int = 100,
    stop: asyncio.Event | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run a worker for ``app``'s team against the Temporal server at ``target`` until
    ``stop`` is set (or the task is cancelled); ``ready(queue)`` once it polls. It
    advances runs and runs delegated subtasks, any run's, on the team's queues."""
    client = await connect_client(target, namespace=namespace)
    name = queue or queue_of(app.team)
    subtasks = Subtasks(app, client, queue=name, identity=client.identity)
    ran = worker(client, app, queue=name, max_runs=max_runs, subtasks=subtasks)
    async with ran, subtask_worker(subtasks, max_subtasks=max_subtasks):
        if ready is not None:
            ready(name)
        await (stop or asyncio.Event()).wait()


def workspace_of(db: str | Path) -> str | Path:
    """``db`` as the App takes it: a URL (``postgresql://...``) stays a string."""
    return db if isinstance(db, str) and "://" in db else Path(db)
