"""Runs that outlive the server: each run is registered in the workspace before it
starts, with a ``server_run`` event naming it; a server that starts finds the runs a dead
server left ``running`` and goes on with them from their last checkpoint (completed
steps do not run again; recorded tool calls are not repeated)."""

from __future__ import annotations

from typing import Any

from corral.graphs import App
from corral.server._jobs import Job

SERVED = "server_run"
"""The event kind that records a run the server started or cancelled."""


def claim(app: App, thread_id: str, start: object) -> str | None:
    """Register a new run (``start`` is its checked input) or take over an existing one
    in this process. ``None`` if done, else the live holder (``host:pid:token``)."""
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
    return app.runs.take_over(thread_id)


def mark(app: App, job: Job, action: str) -> None:
    """Record that the server started (``start``) or cancelled (``cancel``) ``job``."""
    app.events.record(
        job.thread_id,
        SERVED,
        None,
        {"action": action, "run_id": job.run_id, "stream_mode": job.stream_mode},
    )


def orphans(app: App) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """This team's runs a dead server left running and did not cancel, taken over by this
    process: (thread id, the run's input, its last ``server_run`` event)."""
    found = []
    for record in app.runs.list(limit=1_000_000, status="running"):
        if record.team != app.plan.name or not record.stale:
            continue
        marks = app.events.list(record.run_id, SERVED)
        if not marks or marks[-1].get("action") != "start":
            continue  # not the server's, or cancelled: a person resumes it
        if app.runs.take_over(record.run_id) is None:
            found.append((record.run_id, dict(record.input), marks[-1]))
    return found
