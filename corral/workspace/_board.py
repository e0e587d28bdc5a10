"""The task board: every subtask is a row, claimed by compare-and-set before it runs.

Creation checks the workspace-wide guards (creation rate with cooldown, pending
tasks) in the same ``BEGIN IMMEDIATE`` transaction as the inserts, so several
processes sharing one file can never create more than the limits allow together.
A task that is done is never run again: claiming it returns its recorded result.

Priority is objective: blocked dependents, age and declared impact, plus a
model-suggested modifier clamped to +-50, all capped at 1,000, so a task that
merely sounds important cannot jump the queue.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.errors import GuardTripped
from corral.workspace import _tasks as rules
from corral.workspace._db import ConnectionPool
from corral.workspace._tasks import COLUMNS, PRIORITY_CAP, RANK
from corral.workspace._types import Limits, NewTask, Task, TaskStatus

_SCORE = "min(?, blocked * 100 + impact + modifier + (? - created_at) / 6.0)"
_CAS = (
    "UPDATE tasks SET status = 'claimed', claimer = ?, claimed_at = ?, lease_until = ?, "
    "attempts = attempts + 1 WHERE id = ? AND (status IN ('pending', 'failed') OR "
    "(status = 'claimed' AND (lease_until < ? OR claimer = ?)))"
)
"""A claim by compare-and-set (see ``claim``)."""


@dataclass
class SqliteBoard:
    """The ``tasks`` table of a workspace and the operations on it."""

    pool: ConnectionPool
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        self.pool.ensure(
            "tasks",
            {
                "id": str,
                "run_id": str,
                "parent_id": str,
                "assignee": str,
                "depth": int,
                "status": str,
                "instruction": str,
                "payload": str,
                "result": str,
                "error": str,
                "impact": float,
                "modifier": float,
                "blocked": int,
                "created_at": float,
                "claimed_at": float,
                "claimer": str,
                "lease_until": float,
                "finished_at": float,
                "attempts": int,
                "rank": float,
            },
            pk="id",
            indexes=[("status", "rank"), ("status", "lease_until"), ("run_id",), ("created_at",)],
        )
        self.pool.ensure("guard_state", {"key": str, "value": float}, pk="key")

    def create(self, tasks: Sequence[NewTask], limits: Limits | None = None) -> list[Task]:
        """Create tasks atomically after the workspace guards; existing ids are kept as is.

        Raises:
            GuardTripped: a limit would be exceeded; nothing was created.
        """
        now = self.clock()
        try:
            return self._create(tasks, limits, now)
        except GuardTripped as trip:
            if trip.guard == "task_rate" and trip.until is not None:
                with self.pool.write() as conn:  # the tasks were rolled back; the cooldown stays
                    conn.execute(
                        "INSERT OR REPLACE INTO guard_state VALUES ('cooldown_until', ?)",
                        (trip.until,),
                    )
            raise

    def _create(self, tasks: Sequence[NewTask], limits: Limits | None, now: float) -> list[Task]:
        with self.pool.write() as conn:
            # A task refused earlier (say, during a cooldown) may be asked for again.
            known = (
                {
                    r[0]
                    for r in conn.execute(
                        f"SELECT id FROM tasks WHERE id IN ({', '.join('?' * len(tasks))}) "
                        "AND status != 'refused'",
                        [t.id for t in tasks],
                    )
                }
                if tasks
                else set()
            )
            new = [t for t in tasks if t.id not in known]
            if new and limits is not None:
                self._check(conn, limits, len(new), now)
            conn.executemany(
                "INSERT OR REPLACE INTO tasks (id, run_id, parent_id, assignee, depth, status, "
                "instruction, payload, impact, modifier, blocked, created_at, attempts, rank) "
                "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, 0, 0)",
                [rules.new_row(t, now) for t in new],
            )
            if new:
                conn.executemany(
                    f"UPDATE tasks SET rank = {RANK} WHERE id = ?", [(t.id,) for t in new]
                )
            return self._get_many(conn, [t.id for t in tasks])  # type: ignore[return-value]

    def _check(self, conn: sqlite3.Connection, limits: Limits, adding: int, now: float) -> None:
        row = conn.execute("SELECT value FROM guard_state WHERE key = 'cooldown_until'").fetchone()
        rules.guard(
            limits,
            adding,
            now,
            cooldown=None if row is None else row[0],
            recent=lambda since: int(
                conn.execute(
                    "SELECT count(*) FROM tasks WHERE created_at > ? AND status != 'refused'",
                    (since,),
                ).fetchone()[0]
            ),
            pending=lambda: int(
                conn.execute(
                    "SELECT count(*) FROM tasks WHERE status IN ('pending', 'claimed')"
                ).fetchone()[0]
            ),
        )

    def refuse(self, tasks: Sequence[NewTask], reason: str) -> None:
        """Record delegations that were refused (they never run and count toward no limit)."""
        now = self.clock()
        with self.pool.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO tasks (id, run_id, parent_id, assignee, depth, status, "
                "instruction, payload, error, impact, modifier, blocked, created_at, attempts) "
                "VALUES (?, ?, ?, ?, ?, 'refused', ?, ?, ?, 0, 0, 0, ?, 0)",
                [rules.refused_row(t, reason, now) for t in tasks],
            )

    def claim_many(
        self, task_ids: Sequence[str], claimer: str, lease_seconds: float
    ) -> list[Task | None]:
        """``claim`` for several tasks in one transaction (each is its own compare-and-set)."""
        now = self.clock()
        with self.pool.write() as conn:
            conn.executemany(
                _CAS,
                [rules.take(claimer, now, lease_seconds, i) for i in task_ids],
            )
            found = self._get_many(conn, task_ids)
        return [rules.held(t, claimer, took=True) for t in found]

    def claim(self, task_id: str, claimer: str, lease_seconds: float) -> Task | None:
        """Claim one task by compare-and-set: pending, failed (a retry), claimed with an
        expired lease, or already held by this claimer (a resumed run takes back its own).

        Returns the task if this claimer now holds it, or it is already done (its
        result is to be used); ``None`` if someone else holds it or it is refused.
        """
        now = self.clock()
        with self.pool.write() as conn:
            row = conn.execute(
                f"{_CAS} RETURNING id", rules.take(claimer, now, lease_seconds, task_id)
            ).fetchone()
            task = self._get(conn, task_id)
        return rules.held(task, claimer, took=row is not None)

    def claim_next(
        self, claimer: str, lease_seconds: float, *, run_id: str | None = None
    ) -> Task | None:
        """Claim the open task with the best rank (optionally of one run), or ``None``.

        A claim whose lease expired is taken back first: its claimer died or stalled.
        """
        now = self.clock()
        with self.pool.write() as conn:
            found = (
                conn.execute(
                    "SELECT id FROM tasks WHERE status = 'claimed' AND lease_until < ? AND "
                    "(? IS NULL OR run_id = ?) ORDER BY lease_until LIMIT 1",
                    (now, run_id, run_id),
                ).fetchone()
                or conn.execute(
                    "SELECT id FROM tasks WHERE status = 'pending' AND (? IS NULL OR run_id = ?) "
                    "ORDER BY rank DESC, id LIMIT 1",
                    (run_id, run_id),
                ).fetchone()
            )
            if found is None:
                return None
            conn.execute(
                "UPDATE tasks SET status = 'claimed', claimer = ?, claimed_at = ?, "
                "lease_until = ?, attempts = attempts + 1 WHERE id = ?",
                (claimer, now, now + lease_seconds, found[0]),
            )
            return self._get(conn, found[0])

    def finish_many(self, claimer: str, outcomes: Sequence[tuple[str, TaskStatus, Any]]) -> int:
        """Record (task id, "done" or "failed", result or error) for tasks ``claimer`` holds,
        in one transaction; each row is its own compare-and-set. Returns how many took."""
        now = self.clock()
        with self.pool.write() as conn:
            taken = 0
            for task_id, status, value in outcomes:
                taken += conn.execute(
                    "UPDATE tasks SET status = ?, result = ?, error = ?, finished_at = ?, "
                    "lease_until = NULL WHERE id = ? AND status = 'claimed' AND claimer = ?",
                    (status, *rules.outcome(status, value), now, task_id, claimer),
                ).rowcount
        return taken

    def complete(self, task_id: str, claimer: str, result: dict[str, Any]) -> bool:
        """Record a result if ``claimer`` still holds the task (compare-and-set)."""
        return self._finish(task_id, claimer, "done", result)

    def fail(self, task_id: str, claimer: str, error: str) -> bool:
        """Record a failure if ``claimer`` still holds the task."""
        return self._finish(task_id, claimer, "failed", error)

    def _finish(
        self,
        task_id: str,
        claimer: str,
        status: TaskStatus,
        value: Any,
    ) -> bool:
        with self.pool.write() as conn:
            row = conn.execute(
                "UPDATE tasks SET status = ?, result = ?, error = ?, finished_at = ?, "
                "lease_until = NULL WHERE id = ? AND status = 'claimed' AND claimer = ? "
                "RETURNING id",
                (status, *rules.outcome(status, value), self.clock(), task_id, claimer),
            ).fetchone()
        return row is not None

    def priority(self, task_id: str) -> float | None:
        """The task's score now (what ``claim_next`` orders by)."""
        with self.pool.read() as conn:
            row = conn.execute(
                f"SELECT {_SCORE} FROM tasks WHERE id = ?", (PRIORITY_CAP, self.clock(), task_id)
            ).fetchone()
        return None if row is None else float(row[0])

    def get(self, task_id: str) -> Task | None:
        """The task with this id."""
        with self.pool.read() as conn:
            return self._get(conn, task_id)

    def tasks(self, *, run_id: str | None = None) -> list[Task]:
        """Every task (of one run), oldest first."""
        with self.pool.read() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM tasks WHERE (? IS NULL OR run_id = ?) ORDER BY created_at, id",
                    (run_id, run_id),
                )
            ]
            return [t for t in self._get_many(conn, ids) if t is not None]

    def created(self, run_id: str, *, conn: sqlite3.Connection | None = None) -> int:
        """Tasks a run created (refused delegations are not counted)."""
        with self.pool.reading(conn) as db:
            return int(
                db.execute(
                    "SELECT count(*) FROM tasks WHERE run_id = ? AND status != 'refused'", (run_id,)
                ).fetchone()[0]
            )

    def count(self, *, run_id: str | None = None, status: TaskStatus | None = None) -> int:
        """How many tasks (of one run, with one status)."""
        with self.pool.read() as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM tasks WHERE (? IS NULL OR run_id = ?) AND "
                    "(? IS NULL OR status = ?)",
                    (run_id, run_id, status, status),
                ).fetchone()[0]
            )

    def cooldown_until(self) -> float | None:
        """When the workspace's creation cooldown ends, if one is in force."""
        with self.pool.read() as conn:
            row = conn.execute(
                "SELECT value FROM guard_state WHERE key = 'cooldown_until'"
            ).fetchone()
        return rules.cooling(None if row is None else row[0], self.clock())

    @classmethod
    def _get(cls, conn: sqlite3.Connection, task_id: str) -> Task | None:
        return cls._get_many(conn, [task_id])[0]

    @staticmethod
    def _get_many(conn: sqlite3.Connection, task_ids: Sequence[str]) -> list[Task | None]:
        """Tasks by id, in the order asked (``None`` where there is none)."""
        found: dict[str, Task] = {}
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start : start + 500]
            for row in conn.execute(
                f"SELECT {COLUMNS} FROM tasks WHERE id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ):
                found[row[0]] = rules.task(row)
        return [found.get(i) for i in task_ids]
