"""Checkpoints and the run registry in the workspace SQLite database."""

from pathlib import Path

from corral.checkpoints._db import ConnectionPool, Synchronous
from corral.checkpoints._runs import RunRecord, RunRegistry, RunStatus
from corral.checkpoints._saver import CheckpointError, CorralSaver
from corral.checkpoints._workspace import Workspace

DEFAULT_DB = Path(".corral") / "corral.db"

__all__ = [
    "DEFAULT_DB",
    "CheckpointError",
    "ConnectionPool",
    "CorralSaver",
    "RunRecord",
    "RunRegistry",
    "RunStatus",
    "Synchronous",
    "Workspace",
]
