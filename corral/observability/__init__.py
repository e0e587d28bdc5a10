"""Run events and the trace built from them."""

from corral.observability._logs import JsonFormatter, log_json
from corral.observability._metrics import Metrics
from corral.observability._trace import Trace, TraceEvent, model_calls, recorded, steps, subtasks

__all__ = [
    "JsonFormatter",
    "Metrics",
    "Trace",
    "TraceEvent",
    "log_json",
    "model_calls",
    "recorded",
    "steps",
    "subtasks",
]
