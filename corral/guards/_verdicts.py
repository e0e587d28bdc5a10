"""Where guard verdicts go: an event for the trace and the current span, a metric, a log
line, the user's hook."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corral.errors import GuardTripped
from corral.observability import Metrics, emit, span_event
from corral.workspace import Alert, EventLog

_STREAMED = frozenset({"failure"})


def _ignore(alert: Alert) -> None:
    """The default budget-alert hook: nothing beyond the event and the log line."""


@dataclass(frozen=True)
class Verdicts:
    """Records what the guards decided, for the run's trace, metrics and hooks."""

    events: EventLog
    metrics: Metrics
    on_budget_alert: Callable[[Alert], object] = _ignore
    clock: Callable[[], float] = time.time

    def trip(self, run_id: str, trip: GuardTripped, policy: str) -> None:
        """Record a guard trip and the policy applied (halt or escalate)."""
        self.metrics.guard_trips.labels(trip.guard).inc()
        data = {
            "guard": trip.guard,
            "limit": trip.limit,
            "seen": trip.seen,
            "policy": policy,
            "until": trip.until,
            "message": str(trip),
        }
        self.events.record(run_id, "guard_trip", trip.agent, data)
        span_event("guard_trip", {"agent": trip.agent, **data})
        emit(
            {
                "kind": "guard_trip",
                "run_id": run_id,
                "at": self.clock(),
                "agent": trip.agent,
                **data,
            }
        )

    def alert(self, run_id: str, alert: Alert) -> None:
        """A budget alert: an event, a logged warning, and the user's hook."""
        data = {
            "layer": alert.layer,
            "used": alert.used,
            "limit": alert.limit,
            "threshold": alert.threshold,
            "day": alert.day,
        }
        self.events.record(run_id, "budget_alert", alert.agent, data)
        span_event("budget_alert", {"agent": alert.agent, **data})
        emit(
            {
                "kind": "budget_alert",
                "run_id": run_id,
                "at": self.clock(),
                "agent": alert.agent,
                **data,
            }
        )
        logging.getLogger("corral.budget").warning(
            "budget alert: %s has used %g of its %s limit %g (threshold %g)",
            alert.agent,
            alert.used,
            alert.layer,
            alert.limit,
            alert.threshold,
        )
        try:
            returned = self.on_budget_alert(alert)
            if inspect.iscoroutine(returned):  # an async hook nothing can await here
                returned.close()
                raise TypeError(
                    "it returned a coroutine, which is never awaited: give a plain function"
                )
        except Exception as exc:  # the user's hook: recorded, never the model call's failure
            logging.getLogger("corral.budget").exception("the on_budget_alert hook raised")
            failure = {"attempt": 1, "error": type(exc).__name__, "message": str(exc)[:500]}
            then = "the run goes on (the alert is recorded; fix the hook)"
            self.record(run_id, "failure", alert.agent, {**failure, "then": then})

    def record(self, run_id: str, kind: str, agent: str | None, data: dict[str, Any]) -> None:
        """Record any other event of the run (failures, refusals, breaker changes);
        failures also go to the stream."""
        self.events.record(run_id, kind, agent, data)
        span_event(kind, {"agent": agent, **data})
        if kind in _STREAMED:
            emit({"kind": kind, "run_id": run_id, "at": self.clock(), "agent": agent, **data})
