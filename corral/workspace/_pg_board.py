"""The task board on Postgres: the SQLite board's rules, atomic across machines.

Creation checks the workspace guards (creation rate with cooldown, pending tasks) and
inserts in one transaction holding the board's advisory lock, so processes on many
machines cannot together create more than the limits allow. Claims are conditional
``UPDATE``s (Postgres re-checks the condition on the locked row), and ``claim_next``
takes the best open task with ``FOR UPDATE SKIP LOCKED``: competing workers each get
a different task without waiting on one another.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.errors import GuardTripped
from corral.workspace import _tasks as rules
from corral.workspace._pg_db import BOARD_LOCK, Conn, PgPool
from corral.workspace._tasks import COLUMNS, PRIORITY_CAP, RANK
from corral.workspace._types import Limits, NewTask, Task, TaskStatus

_TAKE = (
    "UPDATE tasks SET status = 'claimed', claimer = %s, claimed_at = %s, lease_until = %s, "
    "attempts = attempts + 1 WHERE id = %s AND (status IN ('pending', 'failed') OR "
    "(status = 'claimed' AND (lease_until < %s OR claimer = %s))) RETURNING id"
)


@dataclass
class PgBoard:
    """The ``tasks`` table of a Postgres workspace and the operations on it."""

    pool: PgPool
    clock: Callable[[], float] = field(default=time.time)

    def create(self, tasks: Sequence[NewTask], limits: Limits | None = None) -> list[Task]:
        """Create tasks atomically after the workspace guards; existing ids are kept.

        Raises:
            GuardTripped: a limit would be exceeded; nothing was created.
        """
        now = self.clock()
        try:
            with self.pool.write(BOARD_LOCK) as conn:
                return self._create(conn, tasks, limits, now)
        except GuardTripped as trip:
            if trip.guard == "task_rate" and trip.until is not None:
                with self.pool.write(BOARD_LOCK) as conn:  # the tasks were rolled back
                    conn.execute(
                        "INSERT INTO guard_state VALUES ('cooldown_until', %s) ON CONFLICT (key) "
                        "DO UPDATE SET value = excluded.value",
                        (trip.until,),
                    )
            raise

    def _create(
        self, conn: Conn, tasks: Sequence[NewTask], limits: Limits | None, now: float
    ) -> list[Task]:
        ids = [t.id for t in tasks]
        known = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM tasks WHERE id = ANY(%s) AND status != 'refused'", (ids,)
            )
        }
        new = [t for t in tasks if t.id not in known]
        if new and limits is not None:
            _check(conn, limits, len(new), now)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO tasks (id, run_id, parent_id, assignee, depth, status, instruction, "
                "payload, impact, modifier, blocked, created_at, attempts, rank) VALUES (%s, %s, "
                "%s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s, 0, 0) ON CONFLICT (id) DO UPDATE "
                "SET run_id = excluded.run_id, parent_id = excluded.parent_id, assignee = "
                "excluded.assignee, depth = excluded.depth, status = 'pending', instruction = "
                "excluded.instruction, payload = excluded.payload, impact = excluded.impact, "
                "modifier = excluded.modifier, blocked = excluded.blocked, created_at = "
                "excluded.created_at, error = NULL, result = NULL, claimer = NULL, "
                "claimed_at = NULL, lease_until = NULL, finished_at = NULL, attempts = 0",
                [rules.new_row(t, now) for t in new],
            )
        if new:
            conn.execute(
                f"UPDATE tasks SET rank = {RANK} WHERE id = ANY(%s)", ([t.id for t in new],)
            )
        return _get_many(conn, ids)  # type: ignore[return-value]

    def refuse(self, tasks: Sequence[NewTask], reason: str) -> None:
        """Record delegations that were refused (they never run and count toward no limit)."""
        now = self.clock()
        with self.pool.write() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO tasks (id, run_id, parent_id, assignee, depth, status, instruction, "
                "payload, error, impact, modifier, blocked, created_at, attempts) VALUES (%s, %s, "
                "%s, %s, %s, 'refused', %s, %s, %s, 0, 0, 0, %s, 0) ON CONFLICT DO NOTHING",
                [rules.refused_row(t, reason, now) for t in tasks],
            )

    def claim_many(
        self, task_ids: Sequence[str], claimer: str, lease_seconds: float
    ) -> list[Task | None]:
        """``claim`` for several tasks in one transaction (each its own compare-and-set)."""
        now = self.clock()
        with self.pool.write() as conn:
            with conn.cursor() as cur:
                cur.executemany(
                    _TAKE, [rules.take(claimer, now, lease_seconds, i) for i in task_ids]
                )
            found = _get_many(conn, task_ids)
        return [rules.held(t, claimer, took=True) for t in found]

    def claim(self, task_id: str, claimer: str, lease_seconds: float) -> Task | None:
        """Claim one task by compare-and-set; the task if this claimer holds it now or it
        is done, ``None`` if another holds it or it is refused."""
        now = self.clock()
        with self.pool.write() as conn:
            row = conn.execute(_TAKE, rules.take(claimer, now, lease_seconds, task_id)).fetchone()
            task = _get_many(conn, [task_id])[0]
        return rules.held(task, claimer, took=row is not None)

    def claim_next(
        self, claimer: str, lease_seconds: float, *, run_id: str | None = None
    ) -> Task | None:
        """Claim the open task with the best rank (an expired lease first), skipping rows
        another worker is claiming at this instant (``FOR UPDATE SKIP LOCKED``)."""
        now = self.clock()
        with self.pool.write() as conn:
            found = (
                conn.execute(
                    "SELECT id FROM tasks WHERE status = 'claimed' AND lease_until < %s AND "
                    "(%s::text IS NULL OR run_id = %s) ORDER BY lease_until LIMIT 1 "
                    "FOR UPDATE SKIP LOCKED",
                    (now, run_id, run_id),
                ).fetchone()
                or conn.execute(
                    "SELECT id FROM tasks WHERE status = 'pending' AND "
                    "(%s::text IS NULL OR run_id = %s) ORDER BY rank DESC, id LIMIT 1 "
                    "FOR UPDATE SKIP LOCKED",
                    (run_id, run_id),
                ).fetchone()
            )
            if found is None:
                return None
            conn.execute(
                "UPDATE tasks SET status = 'claimed', claimer = %s, claimed_at = %s, "
                "lease_until = %s, attempts = attempts + 1 WHERE id = %s",
                (claimer, now, now + lease_seconds, found[0]),
            )
            return _get_many(conn, [found[0]])[0]

    def finish_many(self, claimer: str, outcomes: Sequence[tuple[str, TaskStatus, Any]]) -> int:
        """Record (task id, "done" or "failed", result or error) for tasks ``claimer``
        holds, in one transaction; how many took."""
        now = self.clock()
        with self.pool.write() as conn:
            return sum(
                conn.execute(
                    "UPDATE tasks SET status = %s, result = %s, error = %s, finished_at = %s, "
                    "lease_until = NULL WHERE id = %s AND status = 'claimed' AND claimer = %s",
                    (status, *rules.outcome(status, value), now, task_id, claimer),
                ).rowcount
                for task_id, status, value in outcomes
            )

    def complete(self, task_id: str, claimer: str, result: dict[str, Any]) -> bool:
        """Record a result if ``claimer`` still holds the task (compare-and-set)."""
        return self.finish_many(claimer, [(task_id, "done", result)]) == 1

    def fail(self, task_id: str, claimer: str, error: str) -> bool:
        """Record a failure if ``claimer`` still holds the task."""
        return self.finish_many(claimer, [(task_id, "failed", error)]) == 1

    def priority(self, task_id: str) -> float | None:
        """The task's score now (what ``claim_next`` orders by)."""
        with self.pool.read() as conn:
            row = conn.execute(
                "SELECT LEAST(%s, blocked * 100 + impact + modifier + (%s - created_at) / 6.0) "
                "FROM tasks WHERE id = %s",
                (PRIORITY_CAP, self.clock(), task_id),
            ).fetchone()
        return None if row is None else float(row[0])

    def get(self, task_id: str) -> Task | None:
        """The task with this id."""
        with self.pool.read() as conn:
            return _get_many(conn, [task_id])[0]

    def tasks(self, *, run_id: str | None = None) -> list[Task]:
        """Every task (of one run), oldest first."""
        with self.pool.read() as conn:
            found = conn.execute(
                f"SELECT {COLUMNS} FROM tasks WHERE (%s::text IS NULL OR run_id = %s) "
                "ORDER BY created_at, id",
                (run_id, run_id),
            ).fetchall()
        return [rules.task(r) for r in found]

    def created(self, run_id: str, *, conn: Conn | None = None) -> int:
        """Tasks a run created (refused delegations are not counted)."""
        with self.pool.reading(conn) as db:
            row = db.execute(
                "SELECT count(*) FROM tasks WHERE run_id = %s AND status != 'refused'", (run_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def count(self, *, run_id: str | None = None, status: TaskStatus | None = None) -> int:
        """How many tasks (of one run, with one status)."""
        with self.pool.read() as conn:
            row = conn.execute(
                "SELECT count(*) FROM tasks WHERE (%s::text IS NULL OR run_id = %s) AND "
                "(%s::text IS NULL OR status = %s)",
                (run_id, run_id, status, status),
            ).fetchone()
        return int(row[0]) if row else 0

    def cooldown_until(self) -> float | None:
        """When the workspace's creation cooldown ends, if one is in force."""
        with self.pool.read() as conn:
            row = conn.execute(
                "SELECT value FROM guard_state WHERE key = 'cooldown_until'"
            ).fetchone()
        return rules.cooling(None if row is None else row[0], self.clock())


def _check(conn: Conn, limits: Limits, adding: int, now: float) -> None:
    """The workspace guards (``_tasks.guard``), read under the board lock."""
    row = conn.execute("SELECT value FROM guard_state WHERE key = 'cooldown_until'").fetchone()
    rules.guard(
        limits,
        adding,
        now,
        cooldown=None if row is None else row[0],
        recent=lambda since: _count(
            conn, "SELECT count(*) FROM tasks WHERE created_at > %s AND status != 'refused'", since
        ),
        pending=lambda: _count(
            conn, "SELECT count(*) FROM tasks WHERE status IN ('pending', 'claimed')"
        ),
    )


def _count(conn: Conn, sql: str, *params: Any) -> int:
    found = conn.execute(sql, params or None).fetchone()
    return int(found[0]) if found else 0


def _get_many(conn: Conn, task_ids: Sequence[str]) -> list[Task | None]:
    """Tasks by id, in the order asked (``None`` where there is none)."""
    found = {
        row[0]: rules.task(row)
        for row in conn.execute(
            f"SELECT {COLUMNS} FROM tasks WHERE id = ANY(%s)", (list(task_ids),)
        )
    }
    return [found.get(i) for i in task_ids]
