"""Guards and budgets: the budget meter, call and delegation limits, the run's deadline,
repeats, retries, verdicts."""

from corral.guards._limits import (
    Deadline,
    calls_trip,
    deadline_trip,
    delegation_trip,
    repeat_trip,
    time_left,
)
from corral.guards._meter import Meter
from corral.guards._retry import backoff, is_transient, retry_after, status_of
from corral.guards._verdicts import Verdicts

__all__ = [
    "Deadline",
    "Meter",
    "Verdicts",
    "backoff",
    "calls_trip",
    "deadline_trip",
    "delegation_trip",
    "is_transient",
    "repeat_trip",
    "retry_after",
    "status_of",
    "time_left",
]
