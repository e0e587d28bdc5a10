"""Runaway guards and the task board."""

from corral.guards._board import Limits, NewTask, Task, TaskBoard, TaskStatus
from corral.guards._trip import GuardTripped

__all__ = ["GuardTripped", "Limits", "NewTask", "Task", "TaskBoard", "TaskStatus"]
