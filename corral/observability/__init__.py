"""What a run shows: typed stream events, the trace, Prometheus metrics, JSON logs."""

from corral.observability._logs import JsonFormatter, log_json
from corral.observability._metrics import Metrics
from corral.observability._stream import (
    EVENTS,
    BudgetAlert,
    Failure,
    GuardTrip,
    ModelCall,
    ReviewRequested,
    RunEvent,
    RunFinished,
    RunStarted,
    StepDone,
    SubtaskCreated,
    SubtaskFinished,
    ToolCall,
    emit,
    outer_stream,
)
from corral.observability._trace import Trace, TraceEvent, model_calls, recorded, steps, subtasks

__all__ = [
    "EVENTS",
    "BudgetAlert",
    "Failure",
    "GuardTrip",
    "JsonFormatter",
    "Metrics",
    "ModelCall",
    "ReviewRequested",
    "RunEvent",
    "RunFinished",
    "RunStarted",
    "StepDone",
    "SubtaskCreated",
    "SubtaskFinished",
    "ToolCall",
    "Trace",
    "TraceEvent",
    "emit",
    "log_json",
    "model_calls",
    "outer_stream",
    "recorded",
    "steps",
    "subtasks",
]
