"""The run registry: one row per run (its id is LangGraph's thread id)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from corral.errors import InputError
from corral.workspace._account import usage_by_run
from corral.workspace._db import ConnectionPool
from corral.workspace._tool_calls import Pool
from corral.workspace._types import (
    LEASE_SECONDS,
    NO_RUN_USAGE,
    RunRecord,
    RunStatus,
    held,
    owner_id,
)


def iso(at: float) -> str:
    """``at`` as UTC ISO 8601 with milliseconds (the runs table's times)."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


_JSON = ("input", "output", "errors", "path", "definition")
_FIELDS = ("output", "errors", "path")
"""What ``update`` sets besides the status (a ``usage`` is accepted and not kept: a
run's account is read from the ledger)."""
_COLUMNS = (
    "run_id, team, manifest, status, started_at, updated_at, pid, input, output, errors, "
    "path, fingerprint, owner, expires_at"
)
"""The columns of a run's record but its definition (``Runs.pinned`` says where that is)."""
Records = list[RunRecord]  # (inside the class, ``list`` names the method)


@dataclass
class Runs:
    """The ``runs`` table; a run's usage is read from the ledger, never kept here. One
    logic for every backend: they differ in their pool, their placeholder (``mark``),
    where a run's team definition is kept (``kept``, ``pinned``) and how ``take_over``
    locks the row it decides on (``lock_row``). ``owner`` is this process as the owner
    of the runs it drives (``host:pid:token``), holding each for ``lease`` seconds."""

    pool: Pool
    clock: Callable[[], float] = field(default=time.time)
    owner: str = field(default_factory=owner_id)
    lease: float = LEASE_SECONDS
    mark: ClassVar[str] = "?"
    pinned: ClassVar[str] = "definition"
    """The SQL of the definition a run is pinned to (its own row keeps it here)."""
    lock_row: ClassVar[str] = ""
    """What ``take_over``'s read of the row adds to hold it until the write is made."""

    def kept(self, conn: Any, fingerprint: str | None, definition: Any) -> str | None:
        """What a run's row keeps of the team ``definition`` it is pinned to (here: all
        of it, as JSON), in the run's own transaction ``conn``."""
        return json.dumps(definition)

    def start(
        self,
        run_id: str,
        team: str,
        manifest: str | None,
        input: dict[str, Any],
        *,
        fingerprint: str | None = None,
        definition: dict[str, Any] | None = None,
    ) -> str | None:
        """Record a new run as ``running`` in this process, pinned to its team's
        ``definition`` (and its ``fingerprint``). If ``run_id`` is taken, nothing is
        written and the status of the run already there is returned."""
        at, p = self.clock(), self.mark
        now = iso(at)
        row = (run_id, team, manifest, now, now, os.getpid(), json.dumps(input), fingerprint)
        with self.pool.write() as conn:
            own = self.kept(conn, fingerprint, definition)
            made = conn.execute(
                "INSERT INTO runs (run_id, team, manifest, status, started_at, updated_at, pid, "
                "input, output, errors, path, fingerprint, definition, owner, expires_at) "
                f"VALUES ({p}, {p}, {p}, 'running', {p}, {p}, {p}, {p}, 'null', '[]', '[]', "
                f"{p}, {p}, {p}, {p}) ON CONFLICT (run_id) DO NOTHING",
                (*row, own, self.owner, at + self.lease),
            )
            if made.rowcount > 0:
                return None
            taken = conn.execute(f"SELECT status FROM runs WHERE run_id = {p}", (run_id,))
            return str(taken.fetchone()[0])

    def update(self, run_id: str, status: RunStatus, *, owned: bool = False, **fields: Any) -> bool:
        """Set a run's status (and output, errors, path) and make it this process's;
        ``owned``: only if it still is (False if not written)."""
        unknown = set(fields) - {*_FIELDS, "usage"}
        if unknown:
            raise ValueError(f"a run has no field {sorted(unknown)[0]!r} to update")
        at, p = self.clock(), self.mark
        values: dict[str, Any] = {"status": status, "updated_at": iso(at)}
        values |= {"pid": os.getpid(), "owner": self.owner, "expires_at": at + self.lease}
        values |= {k: json.dumps(v) for k, v in fields.items() if k in _FIELDS}
        sets = ", ".join(f"{name} = {p}" for name in values)  # names from the lists above
        mine = f" AND (owner = {p} OR owner IS NULL)" if owned else ""
        with self.pool.write() as conn:
            done = conn.execute(
                f"UPDATE runs SET {sets} WHERE run_id = {p}{mine}",
                (*values.values(), run_id, *([self.owner] if owned else [])),
            )
            return bool(done.rowcount > 0)

    def pin(self, run_id: str, fingerprint: str, definition: dict[str, Any]) -> None:
        """Pin the run to a new team definition (it goes on under a changed team file)."""
        p = self.mark
        with self.pool.write() as conn:
            conn.execute(
                f"UPDATE runs SET fingerprint = {p}, definition = {p} WHERE run_id = {p}",
                (fingerprint, self.kept(conn, fingerprint, definition), run_id),
            )

    def take_over(self, run_id: str) -> str | None:
        """Mark the run ``running`` and owned here, unless another live holder has it (on
        this host: its process lives; elsewhere: its lease has not ended): one
        compare-and-set in one transaction. ``None`` if taken, else the holder."""
        at, p = self.clock(), self.mark
        with self.pool.write() as conn:
            holder = self.holder(conn, run_id)
            if holder is not None:
                return holder
            conn.execute(
                f"UPDATE runs SET status = 'running', pid = {p}, owner = {p}, expires_at = {p}, "
                f"updated_at = {p} WHERE run_id = {p}",
                (os.getpid(), self.owner, at + self.lease, iso(at), run_id),
            )
        return None

    def holder(self, conn: Any, run_id: str) -> str | None:
        """Who else drives the run now (``host:pid:token``; ``None``: nobody), read in
        ``conn``'s write transaction with the row held until it ends (``lock_row``)."""
        row = conn.execute(
            f"SELECT status, owner, pid, expires_at FROM runs WHERE run_id = {self.mark}"
            + self.lock_row,
            (run_id,),
        ).fetchone()
        status, owner, pid, until = row if row is not None else (None, None, None, None)
        if status == "running" and held(owner, pid, until, self.owner, self.clock()):
            return str(owner or pid)
        return None

    def idle(self, conn: Any, run_id: str) -> None:
        """Raise ``InputError`` if another process drives the run (see ``holder``)."""
        holder = self.holder(conn, run_id)
        if holder is not None:
            raise InputError(
                f"run {run_id!r} is still running (held by {holder}); wait for it to end",
                field="run_id",
            )

    def renew(self, run_id: str) -> bool:
        """Extend this process's lease on a run it drives; ``False`` if it is not its own."""
        p = self.mark
        with self.pool.write() as conn:
            cursor = conn.execute(
                f"UPDATE runs SET expires_at = {p} WHERE run_id = {p} AND owner = {p}",
                (self.clock() + self.lease, run_id, self.owner),
            )
            return bool(cursor.rowcount > 0)

    def delete(self, run_id: str) -> None:
        """Forget a run (its checkpoints are the saver's to delete)."""
        with self.pool.write() as conn:
            conn.execute(f"DELETE FROM runs WHERE run_id = {self.mark}", (run_id,))

    def get(self, run_id: str) -> RunRecord | None:
        """The run with this id, or ``None``."""
        with self.pool.read() as conn:
            sql = f"SELECT {_COLUMNS}, {self.pinned} AS definition FROM runs WHERE run_id = "
            records = self._records(conn, conn.execute(sql + self.mark, (run_id,)))
        return records[0] if records else None

    def list(self, *, limit: int = 100, status: RunStatus | None = None) -> list[RunRecord]:
        """The most recent runs first (only those with ``status`` if given)."""
        # Two statements, not ``? IS NULL OR status = ?``: each walks its own index in
        # order and stops after ``limit`` rows (the disjunction scans every run).
        if type(limit) is not int or limit < 0:  # SQLite reads -1 as all, None fails raw
            raise InputError(
                f"limit must be a whole number of 0 or more, not {limit!r}", field="limit"
            )
        p = self.mark
        select = f"SELECT {_COLUMNS}, {self.pinned} AS definition FROM runs"
        with self.pool.read() as conn:
            if status is None:
                cursor = conn.execute(f"{select} ORDER BY started_at DESC LIMIT {p}", (limit,))
            else:
                cursor = conn.execute(
                    f"{select} WHERE status = {p} ORDER BY started_at DESC LIMIT {p}",
                    (status, limit),
                )
            return self._records(conn, cursor)

    def _records(self, conn: Any, cursor: Any) -> Records:
        """The records of ``cursor``'s rows, each with its account from the ledger (in
        the same read snapshot)."""
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        usage = usage_by_run(conn, self.mark, [r["run_id"] for r in rows]) if rows else {}
        return [
            RunRecord(
                **{k: json.loads(v) if k in _JSON and v is not None else v for k, v in r.items()},
                usage=usage.get(r["run_id"], NO_RUN_USAGE),
            )
            for r in rows
        ]


@dataclass
class SqliteRuns(Runs):
    """The ``runs`` table of a SQLite workspace (created and migrated with sqlite-utils,
    written in plain SQL: a quarter of the time per run). The team definition a run is
    pinned to is kept once per fingerprint in ``definitions`` (runs recorded before
    that keep theirs in their own row)."""

    pool: ConnectionPool
    pinned: ClassVar[str] = (
        "COALESCE(runs.definition, (SELECT d.definition FROM definitions d "
        "WHERE d.fingerprint = runs.fingerprint))"
    )
    _texts: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    """Fingerprint -> its definition as JSON (each is written once per process)."""

    def __post_init__(self) -> None:
        ensure = self.pool.ensure
        ensure("definitions", {"fingerprint": str, "definition": str}, pk="fingerprint")
        ensure(
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
        with self.pool.connection() as conn:  # (status) alone is covered by (status, started_at)
            old = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'idx_runs_status'")
            found = old.fetchone() is not None
        if found:
            with self.pool.write() as conn:
                conn.execute("DROP INDEX IF EXISTS idx_runs_status")

    def kept(self, conn: Any, fingerprint: str | None, definition: Any) -> str | None:
        """Store the definition of ``fingerprint`` in ``definitions`` unless it is stored
        (a key lookup; in the run's own transaction, so a prune cannot drop it in
        between): the run's row keeps none. A run with no fingerprint keeps its own."""
        if fingerprint is None:
            return json.dumps(definition)
        text = self._texts.get(fingerprint)
        if text is None:
            text = self._texts[fingerprint] = json.dumps(definition)
        conn.execute("INSERT OR IGNORE INTO definitions VALUES (?, ?)", (fingerprint, text))
        return None
