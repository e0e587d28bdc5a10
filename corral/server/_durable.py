"""Runs that outlive the server: each run is registered in the workspace before it
starts, with a ``server_run`` event naming it; a server that starts finds the runs a dead
server left ``running`` and goes on with them from their last checkpoint (completed
steps do not run again; recorded tool calls are not repeated)."""

from __future__ import annotations

import asyncio
from typing import Any

from corral.graphs import App, held_by_workflow
from corral.server._jobs import Job

SERVED = "server_run"
"""The event kind that records a run the server started or cancelled."""


def claim(app: App, thread_id: str, start: object) -> str | None:
    """Register a new run (``start`` is its checked input) or take over an existing one
    in this process. ``None`` if done, else who holds it: a live process
    (``process host:pid:token``), or the Temporal workflow a worker left it waiting in."""
    if held_by_workflow(app.runs, app.events, thread_id):
        return "its Temporal workflow (a worker paused it): serve with --temporal to go on"
    if isinstance(start, dict):
        plan = app.plan
        taken = app.runs.start(
            thread_id,
            plan.name,
            str(plan.source) if plan.source is not None else None,
            start,
            fingerprint=plan.fingerprint,
            definition=dict(plan.definition),
        )
        if taken is None:
            return None
    holder = app.runs.take_over(thread_id)
    return None if holder is None else f"process {holder}"


def mark(app: App, job: Job, action: str) -> None:
    """Record that the server started (``start``) or cancelled (``cancel``) ``job``."""
    app.events.record(
        job.thread_id,
        SERVED,
        None,
        {"action": action, "run_id": job.run_id, "stream_mode": job.stream_mode},
    )


async def stop(app: App, job: Job) -> None:
    """Cancel ``job`` for good (a client's cancel, or a run replaced on its thread):
    marked first, so a restarted server does not go on with it, and recorded
    ``cancelled`` once it stopped. A server's closing stops its runs otherwise: the next
    server goes on with them."""
    if job.task is not None and not job.done.is_set():
        await asyncio.to_thread(mark, app, job, "cancel")
        job.stopped = True
        job.task.cancel()


def orphans(app: App) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """This team's runs a dead server left running and did not cancel, taken over by this
    process: (thread id, the run's input, its last ``server_run`` event)."""
    found = []
    for record in app.runs.list(limit=1_000_000, status="running"):
        if record.team != app.plan.name or not record.stale:
            continue
        marks = app.events.list(record.run_id, SERVED)
        cancelled = {m.get("run_id") for m in marks if m.get("action") == "cancel"}
        live = [m for m in marks if m.get("action") == "start" and m["run_id"] not in cancelled]
        if not live:
            continue  # not the server's, or cancelled: a person resumes it
        if app.runs.take_over(record.run_id) is None:  # a cancelled queued run is not it
            found.append((record.run_id, dict(record.input), live[-1]))
    return found
