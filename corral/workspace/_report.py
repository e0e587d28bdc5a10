"""What a prune did, on any backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PruneReport:
    """What ``prune`` did: runs forgotten, completed runs trimmed and checkpoints trimmed
    off them, bytes given back."""

    runs: int
    completed: int
    checkpoints: int
    freed: int
    vacuumed: bool = True
    """False when other connections kept the database busy past the timeout."""
    reuses: bool = False
    """True on Postgres: ``VACUUM`` keeps most of the deleted rows' space for new rows,
    and only empty pages at a table's end go back to the file system (``freed``)."""
