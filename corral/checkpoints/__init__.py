"""Checkpoints and the run registry in the workspace SQLite database."""

from corral.checkpoints._runs import RunRecord, RunRegistry, RunStatus
from corral.checkpoints._saver import WorkspaceSaver
from corral.checkpoints._workspace import DEFAULT_DB, connect

__all__ = ["DEFAULT_DB", "RunRecord", "RunRegistry", "RunStatus", "WorkspaceSaver", "connect"]
