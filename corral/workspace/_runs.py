"""The run registry: one row per run (its id is LangGraph's thread id)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from corral.workspace._db import ConnectionPool
from corral.workspace._ledger import usage_by_run
from corral.workspace._types import NO_RUN_USAGE, RunRecord, RunStatus, alive


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


_JSON = ("input", "output", "errors", "path", "definition")


class SqliteRuns:
    """Rows of the ``runs`` table (created and migrated with sqlite-utils). A run's usage
    is read from the ledger, never kept here: its ``usage`` column is no longer written."""

    def __init__(self, pool: ConnectionPool, *, clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self._clock = clock
        pool.ensure(
            "runs",
            {
                "run_id": str,
                "team": str,
                "manifest": str,
                "status": str,
                "started_at": str,
                "updated_at": str,
                "pid": int,
                "input": str,
                "output": str,
                "errors": str,
                "usage": str,
                "path": str,
                "fingerprint": str,
                "definition": str,
            },
            pk="run_id",
            indexes=[("status",)],
        )

    def start(
        self,
        run_id: str,
        team: str,
        manifest: str | None,
        input: dict[str, Any],
        *,
        fingerprint: str | None = None,
        definition: dict[str, Any] | None = None,
    ) -> None:
        """Record a new run as ``running`` in this process, pinned to its team's
        ``definition`` (and its ``fingerprint``)."""
        now = _iso(self._clock())
        row = {
            "run_id": run_id,
            "team": team,
            "manifest": manifest,
            "status": "running",
            "started_at": now,
            "updated_at": now,
            "pid": os.getpid(),
            "input": json.dumps(input),
            "output": "null",
            "errors": "[]",
            "path": "[]",
            "fingerprint": fingerprint,
            "definition": json.dumps(definition),
        }
        with self._pool.write() as conn:
            sqlite_utils.Database(conn)["runs"].insert(row)  # type: ignore[union-attr]

    def update(self, run_id: str, status: RunStatus, **fields: Any) -> None:
        """Set a run's status (and output, errors, path)."""
        values: dict[str, Any] = {
            "status": status,
            "updated_at": _iso(self._clock()),
            "pid": os.getpid(),
        }
        values |= {k: json.dumps(v) for k, v in fields.items()}
        with self._pool.write() as conn:
            sqlite_utils.Database(conn)["runs"].update(run_id, values)  # type: ignore[union-attr]

    def pin(self, run_id: str, fingerprint: str, definition: dict[str, Any]) -> None:
        """Pin the run to a new team definition (it goes on under a changed team file)."""
        with self._pool.write() as conn:
            conn.execute(
                "UPDATE runs SET fingerprint = ?, definition = ? WHERE run_id = ?",
                (fingerprint, json.dumps(definition), run_id),
            )

    def take_over(self, run_id: str) -> int | None:
        """Mark the run ``running`` in this process, unless a live process runs it: one
        compare-and-set in one transaction. ``None`` if taken, else the holder's pid."""
        me = os.getpid()
        with self._pool.write() as conn:
            row = conn.execute(
                "SELECT status, pid FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            held = row is not None and row[0] == "running" and row[1] not in (None, me)
            if held and alive(int(row[1])):
                return int(row[1])
            conn.execute(
                "UPDATE runs SET status = 'running', pid = ?, updated_at = ? WHERE run_id = ?",
                (me, _iso(self._clock()), run_id),
            )
        return None

    def delete(self, run_id: str) -> None:
        """Forget a run (its checkpoints are the saver's to delete)."""
        with self._pool.write() as conn:
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def get(self, run_id: str) -> RunRecord | None:
        """The run with this id, or ``None``."""
        with self._pool.read() as conn:
            rows = _rows(conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)))
            records = _records(conn, rows)
        return records[0] if records else None

    def list(self, *, limit: int = 100, status: RunStatus | None = None) -> list[RunRecord]:
        """The most recent runs first (only those with ``status`` if given)."""
        with self._pool.read() as conn:
            rows = _rows(
                conn.execute(
                    "SELECT * FROM runs WHERE (? IS NULL OR status = ?) ORDER BY started_at DESC "
                    "LIMIT ?",
                    (status, status, limit),
                )
            )
            return _records(conn, rows)


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _records(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> list[RunRecord]:
    """Records of ``rows``, each with its account from the ledger (same read snapshot)."""
    usage = usage_by_run(conn, [r["run_id"] for r in rows]) if rows else {}
    return [
        RunRecord(
            **{
                k: json.loads(v) if k in _JSON and v is not None else v
                for k, v in r.items()
                if k != "usage"
            },
            usage=usage.get(r["run_id"], NO_RUN_USAGE),
        )
        for r in rows
    ]


def _loaded(column: str, value: Any) -> Any:
    return json.loads(value) if column in _JSON and value is not None else value
