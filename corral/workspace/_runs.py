"""The run registry: one row per run (its id is LangGraph's thread id)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from corral.workspace._account import usage_by_run
from corral.workspace._db import ConnectionPool
from corral.workspace._types import (
    LEASE_SECONDS,
    NO_RUN_USAGE,
    RunRecord,
    RunStatus,
    held,
    owner_id,
)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


_JSON = ("input", "output", "errors", "path", "definition")
_FIELDS = ("output", "errors", "path", "usage")
_SELECT = (
    "SELECT runs.*, COALESCE(runs.definition, (SELECT d.definition FROM definitions d "
    "WHERE d.fingerprint = runs.fingerprint)) AS pinned FROM runs"
)
"""A run's row, with the definition it is pinned to (its own, or the shared one)."""
"""What ``update`` may set besides the status."""


class SqliteRuns:
    """Rows of the ``runs`` table (created and migrated with sqlite-utils, written in plain
    SQL: a quarter of the time per run). A run's usage is read from the ledger, never
    kept here: its ``usage`` column is no longer written. The team definition a run is
    pinned to is kept once per fingerprint in ``definitions`` (runs recorded before
    that keep theirs in their own row)."""

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
        lease: float = LEASE_SECONDS,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self.owner = owner or owner_id()
        """This process as the owner of the runs it drives (``host:pid:token``)."""
        self.lease = lease
        self._texts: dict[str, str] = {}  # fingerprint -> its definition as JSON
        pool.ensure("definitions", {"fingerprint": str, "definition": str}, pk="fingerprint")
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
                "owner": str,
                "expires_at": float,
            },
            pk="run_id",
            indexes=[("status", "started_at"), ("started_at",)],
        )
        with pool.connection() as conn:  # (status) alone is covered by (status, started_at)
            old = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'idx_runs_status'")
            found = old.fetchone() is not None
        if found:
            with pool.write() as conn:
                conn.execute("DROP INDEX IF EXISTS idx_runs_status")

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
        at = self._clock()
        now = _iso(at)
        row = (run_id, team, manifest, now, now, os.getpid(), json.dumps(input), fingerprint)
        own = json.dumps(definition) if fingerprint is None else None
        lease = (self.owner, at + self.lease)
        with self._pool.write() as conn:
            if fingerprint is not None:
                self._keep(conn, fingerprint, definition)
            conn.execute(
                "INSERT INTO runs (run_id, team, manifest, status, started_at, updated_at, pid, "
                "input, output, errors, path, fingerprint, definition, owner, expires_at) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, 'null', '[]', '[]', ?, ?, ?, ?)",
                (*row, own, *lease),
            )

    def _keep(
        self, conn: sqlite3.Connection, fingerprint: str, definition: dict[str, Any] | None
    ) -> None:
        """Store the definition of ``fingerprint`` unless it is stored (a key lookup; in
        the run's own transaction, so a prune cannot drop it in between)."""
        text = self._texts.get(fingerprint)
        if text is None:
            text = self._texts[fingerprint] = json.dumps(definition)
        conn.execute("INSERT OR IGNORE INTO definitions VALUES (?, ?)", (fingerprint, text))

    def update(self, run_id: str, status: RunStatus, **fields: Any) -> None:
        """Set a run's status (and output, errors, path)."""
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"a run has no field {sorted(unknown)[0]!r} to update")
        names = ["status", "updated_at", "pid", "owner", "expires_at", *fields]
        at = self._clock()
        values = [status, _iso(at), os.getpid(), self.owner, at + self.lease]
        values += [json.dumps(v) for v in fields.values()]
        sets = ", ".join(f"{name} = ?" for name in names)
        with self._pool.write() as conn:
            conn.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", (*values, run_id))

    def pin(self, run_id: str, fingerprint: str, definition: dict[str, Any]) -> None:
        """Pin the run to a new team definition (it goes on under a changed team file)."""
        with self._pool.write() as conn:
            self._keep(conn, fingerprint, definition)
            conn.execute(
                "UPDATE runs SET fingerprint = ?, definition = NULL WHERE run_id = ?",
                (fingerprint, run_id),
            )

    def take_over(self, run_id: str) -> str | None:
        """Mark the run ``running`` and owned here, unless another live holder has it (on
        this host: its process lives; elsewhere: its lease has not ended): one
        compare-and-set in one transaction. ``None`` if taken, else the holder."""
        at = self._clock()
        with self._pool.write() as conn:
            row = conn.execute(
                "SELECT status, owner, pid, expires_at FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            status, owner, pid, until = row if row is not None else (None, None, None, None)
            if status == "running" and held(owner, pid, until, self.owner, at):
                return str(owner or pid)
            conn.execute(
                "UPDATE runs SET status = 'running', pid = ?, owner = ?, expires_at = ?, "
                "updated_at = ? WHERE run_id = ?",
                (os.getpid(), self.owner, at + self.lease, _iso(at), run_id),
            )
        return None

    def renew(self, run_id: str) -> bool:
        """Extend this process's lease on a run it drives; ``False`` if it is not its own."""
        with self._pool.write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET expires_at = ? WHERE run_id = ? AND owner = ?",
                (self._clock() + self.lease, run_id, self.owner),
            )
            return cursor.rowcount > 0

    def delete(self, run_id: str) -> None:
        """Forget a run (its checkpoints are the saver's to delete)."""
        with self._pool.write() as conn:
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def get(self, run_id: str) -> RunRecord | None:
        """The run with this id, or ``None``."""
        with self._pool.read() as conn:
            rows = _rows(conn.execute(f"{_SELECT} WHERE run_id = ?", (run_id,)))
            records = _records(conn, rows)
        return records[0] if records else None

    def list(self, *, limit: int = 100, status: RunStatus | None = None) -> list[RunRecord]:
        """The most recent runs first (only those with ``status`` if given)."""
        # Two statements, not ``? IS NULL OR status = ?``: each walks its own index in
        # order and stops after ``limit`` rows (the disjunction scans every run).
        with self._pool.read() as conn:
            if status is None:
                cursor = conn.execute(f"{_SELECT} ORDER BY started_at DESC LIMIT ?", (limit,))
            else:
                cursor = conn.execute(
                    f"{_SELECT} WHERE status = ? ORDER BY started_at DESC LIMIT ?",
                    (status, limit),
                )
            return _records(conn, _rows(cursor))


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:  # the definition pinned, wherever it is kept
        row["definition"] = row.pop("pinned")
    return rows


def _records(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> list[RunRecord]:
    """Records of ``rows``, each with its account from the ledger (same read snapshot)."""
    usage = usage_by_run(conn, "?", [r["run_id"] for r in rows]) if rows else {}
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
