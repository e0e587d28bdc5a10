"""How a run ended, and why when it did not complete, as typed errors."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.errors import GraphRecursionError

from corral.errors import (
    GuardTripped,
    NoOutput,
    Rejected,
    ReviewPending,
    RunError,
    StepLimitExceeded,
)
from corral.guards import Verdicts
from corral.workspace import EventLog, RunStatus

CANCELLED = "cancelled: the run was cancelled while it ran; resume it to go on"
STOPPED = {
    KeyboardInterrupt: "cancelled: interrupted (Ctrl-C) while it ran; resume it to go on",
    GeneratorExit: "cancelled: its event stream was closed before it ended; resume it to go on",
    SystemExit: "cancelled: its process exited (SystemExit) while it ran; resume it to go on",
}
"""How a run stopped by its own process, not by a failure, is recorded."""


def ending(
    run_id: str,
    error: BaseException | None,
    snapshot: Any,
    values: dict[str, Any],
    *,
    max_steps: int,
    verdicts: Verdicts,
    events: EventLog,
) -> tuple[RunStatus, list[RunError]]:
    """The run's status and its errors, the cause first."""
    if isinstance(error, GraphRecursionError):
        trip = StepLimitExceeded(max_steps)
        verdicts.trip(run_id, trip, "halt")
        return "halted", [trip]
    if isinstance(error, GuardTripped):
        return "halted", _cause_first(run_id, error, events)
    if isinstance(error, RunError):
        return "failed", [error]
    if isinstance(error, asyncio.CancelledError):  # Temporal's or the server's cancel
        return "cancelled", [RunError(CANCELLED)]
    stopped = STOPPED.get(type(error)) if error is not None else None
    if stopped is not None:  # Ctrl-C, or a consumer that stopped reading its stream
        return "cancelled", [RunError(stopped)]
    if error is not None:
        wrapped = RunError(str(error) or type(error).__name__)
        wrapped.__cause__ = error
        return "failed", [wrapped]
    if snapshot is not None and snapshot.interrupts:
        return "paused", [ReviewPending(dict(snapshot.interrupts[0].value))]
    if values.get("_rejected"):
        return "failed", [Rejected(str(values["_rejected"]))]
    if snapshot is not None and snapshot.next:
        return "paused", []
    if values.get("_output") is not None:
        return "completed", []
    return "failed", [NoOutput("the run ended without reaching END")]


def _cause_first(run_id: str, error: GuardTripped, events: EventLog) -> list[RunError]:
    """The trip that ended the run, after the trip that caused it when they differ.

    A cooldown follows a rate trip, and concurrent subtasks can trip after the cause.
    """
    halts = [e for e in events.list(run_id, "guard_trip") if e.get("policy") == "halt"]
    first = next((e for e in halts if e["guard"] != "cooldown"), halts[0] if halts else None)
    errors: list[RunError] = [error]
    if first is not None and first.get("message") != str(error):
        cause = GuardTripped(
            str(first["guard"]),
            limit=float(first["limit"]),
            seen=float(first.get("seen") or 0),
            message="",
            agent=first["agent"],
            until=first.get("until"),
        )
        cause.args = (first["message"],)
        cause.seen = first.get("seen")  # type: ignore[assignment]
        errors.insert(0, cause)
    return errors
