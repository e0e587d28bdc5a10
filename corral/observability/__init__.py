"""Run events (the trace grows from here)."""

from corral.observability._events import EventLog

__all__ = ["EventLog"]
