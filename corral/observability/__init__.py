"""Run events and the trace built from them."""

from corral.observability._events import EventLog
from corral.observability._metrics import Metrics
from corral.observability._trace import Trace, TraceEvent, model_calls, recorded, steps, subtasks

__all__ = ["EventLog", "Metrics", "Trace", "TraceEvent", "model_calls", "recorded", "steps",
           "subtasks"]
