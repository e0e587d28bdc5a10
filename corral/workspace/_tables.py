"""The checkpointer's tables and the one statement shape shared by its write paths."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from corral.workspace._encode import WriteRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS cp_checkpoints (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    parent_id TEXT, run_id TEXT, type TEXT NOT NULL, checkpoint BLOB NOT NULL,
    meta_type TEXT NOT NULL, metadata BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cp_checkpoints_run ON cp_checkpoints (run_id);
CREATE TABLE IF NOT EXISTS cp_blobs (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, channel TEXT NOT NULL,
    version TEXT NOT NULL, type TEXT NOT NULL, blob BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cp_writes (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL, idx INTEGER NOT NULL, channel TEXT NOT NULL,
    type TEXT NOT NULL, blob BLOB, task_path TEXT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)) WITHOUT ROWID;
"""

CHECKPOINT_COLUMNS = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_id, type, checkpoint, meta_type, metadata"
)
TABLES = ("cp_checkpoints", "cp_blobs", "cp_writes")


def insert_writes(conn: sqlite3.Connection, rows: Sequence[WriteRow]) -> None:
    """Special channels (errors, interrupts) replace; ordinary writes keep the first."""
    conn.executemany(
        "INSERT OR REPLACE INTO cp_writes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [r for r in rows if r[4] < 0],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO cp_writes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [r for r in rows if r[4] >= 0],
    )
