"""Runaway guards, the task board and the budget ledger."""

from corral.guards._board import Limits, NewTask, Task, TaskBoard, TaskStatus
from corral.guards._breaker import Breakers
from corral.guards._ledger import Alert, BudgetLimits, Ledger, Settled
from corral.guards._trip import BudgetExceeded, GuardTripped

__all__ = [
    "Alert",
    "Breakers",
    "BudgetExceeded",
    "BudgetLimits",
    "GuardTripped",
    "Ledger",
    "Limits",
    "NewTask",
    "Settled",
    "Task",
    "TaskBoard",
    "TaskStatus",
]
