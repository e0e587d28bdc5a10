"""Runs a Temporal workflow holds: paused for a review or halted for a cooldown by a
worker, the workflow waits for the decision or its timer. Driven here as well, such a
run would go on twice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.keys import WORKFLOW_WAIT

if TYPE_CHECKING:
    from corral.workspace import EventLog, RunRegistry


def held_by_workflow(runs: RunRegistry, events: EventLog, run_id: str) -> bool:
    """Whether ``run_id`` is as a worker left it waiting in its workflow."""
    record = runs.get(run_id)
    if record is None or record.status not in ("paused", "halted"):
        return False
    marks = events.list(run_id, WORKFLOW_WAIT)
    return bool(marks) and marks[-1].get("updated_at") == record.updated_at


def on_workers_hint(run_id: str) -> str:
    """Why ``run_id`` is not resumed here, and where it is."""
    return (
        f"run {run_id!r} waits in its Temporal workflow (a worker paused it or it cools "
        f"down there); send the decision there: corral resume {run_id} --temporal HOST:PORT"
    )
