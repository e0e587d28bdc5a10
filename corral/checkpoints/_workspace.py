"""A workspace: one SQLite file holding checkpoints and corral's own tables."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from corral.checkpoints._db import ConnectionPool, Synchronous
from corral.checkpoints._runs import RunRegistry
from corral.checkpoints._saver import CorralSaver
from corral.guards._board import TaskBoard
from corral.guards._breaker import Breakers
from corral.guards._ledger import Ledger
from corral.observability._events import EventLog


class Workspace:
    """One workspace file: its connections, checkpointer, runs, task board and events."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "NORMAL",
        keep: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.pool = ConnectionPool(self.path, synchronous=synchronous)
        self.saver = CorralSaver(self.pool, keep=keep)
        self.runs = RunRegistry(self.pool)
        self.board = TaskBoard(self.pool, clock=clock)
        self.events = EventLog(self.pool)
        self.ledger = Ledger(self.pool, clock=clock)
        self.breakers = Breakers(self.pool, clock=clock)

    def delete_run(self, run_id: str) -> None:
        """Delete a run's checkpoints, writes and record."""
        self.saver.delete_thread(run_id)
        self.runs.delete(run_id)

    def close(self) -> None:
        """Close every connection."""
        self.pool.close()
