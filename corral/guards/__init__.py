"""Guards and budgets: the budget meter, call and delegation limits, retries, verdicts."""

from corral.guards._limits import calls_trip, delegation_trip
from corral.guards._meter import Meter
from corral.guards._retry import backoff, is_transient, retry_after, status_of
from corral.guards._verdicts import Verdicts

__all__ = [
    "Meter",
    "Verdicts",
    "backoff",
    "calls_trip",
    "delegation_trip",
    "is_transient",
    "retry_after",
    "status_of",
]
