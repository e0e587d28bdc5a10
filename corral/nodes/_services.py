"""What a node may use besides its plan: the workspace's stores, context, verdicts,
metrics, spans.

Built whole, once, by the ``App`` (or detached, for a graph with no workspace) and
never changed after; nothing downstream checks for a missing service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from corral.context import ContextStore
from corral.guards import Verdicts
from corral.observability import Metrics, Spans
from corral.workspace import (
    AuditLog,
    BreakerStore,
    EventLog,
    Ledger,
    RunRegistry,
    TaskBoard,
    ToolCallLog,
)


@dataclass(frozen=True)
class Services:
    """The runtime's services, shared by every node of one compiled team."""

    runs: RunRegistry
    board: TaskBoard
    ledger: Ledger
    events: EventLog
    audit: AuditLog
    tool_calls: ToolCallLog
    breakers: BreakerStore
    context: ContextStore
    verdicts: Verdicts
    metrics: Metrics
    spans: Spans
    prompt_chars: int = 2000
    clock: Callable[[], float] = time.time
