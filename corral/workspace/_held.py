"""The writes both savers hold for each run's next checkpoint, and each run's head: in
memory, indexed by run, so a commit looks at its own run only, however many run. No
SQL here: each saver writes what it is given back, in its own transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from langgraph.checkpoint.base import writes_sort_key

from corral.workspace._encode import Rows, Writes

MAX_HEADS = 10_000
"""Runs whose newest checkpoint is remembered (to hold their writes for the next one)
when they are not released at their end: past it, the longest idle is forgotten."""

Run = tuple[str, str]
"""``(thread id, namespace)``."""


class Held:
    """Each run's head checkpoint and the writes held against it (thread-safe).

    A checkpoint is the head from the start of its ``put`` (``new_head``), so writes
    against it that arrive while it commits are held too; a failed ``put`` gives the
    head back (``failed_head``). Writes taken for a commit that fails are held again
    (``give_back``), and those of a run whose head is forgotten go with the next commit
    of any run: none is lost while the process lives."""

    def __init__(self) -> None:
        self._rows: dict[Run, Rows] = {}  # writes on the run's head
        self._heads: dict[str, dict[str, str]] = {}  # thread -> ns -> head checkpoint id
        self._spill: Rows = []  # writes of runs with no head: committed with the next
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many runs have a head remembered."""
        with self._lock:
            return len(self._heads)

    def new_head(self, run: Run, checkpoint_id: str) -> str | None:
        """Make ``checkpoint_id`` the run's head before its ``put`` commits; the head
        it replaces."""
        thread_id, ns = run
        with self._lock:
            heads = self._heads.pop(thread_id, None) or {}  # re-inserted: newest last
            before = heads.get(ns)
            heads[ns] = checkpoint_id
            self._heads[thread_id] = heads
            while len(self._heads) > MAX_HEADS:  # runs not released: forget the oldest
                oldest = next(iter(self._heads))
                for gone in self._heads.pop(oldest):
                    self._spill.extend(self._rows.pop((oldest, gone), []))
        return before

    def failed_head(self, run: Run, checkpoint_id: str, before: str | None) -> None:
        """A ``put`` that did not commit: its head goes back, and writes held against the
        checkpoint that does not exist are dropped."""
        thread_id, ns = run
        with self._lock:
            heads = self._heads.get(thread_id)
            if heads is not None and heads.get(ns) == checkpoint_id:
                if before is None:
                    heads.pop(ns)
                else:
                    heads[ns] = before
            if held := self._rows.get(run):
                self._rows[run] = [r for r in held if r[2] != checkpoint_id]

    def hold(self, w: Writes) -> Rows:
        """Hold a task's writes for the run's next checkpoint if they are against its
        head and do not end a step; the rows to commit now otherwise."""
        with self._lock:
            if not w.ends_step and self._heads.get(w.thread_id, {}).get(w.ns) == w.checkpoint_id:
                self._rows.setdefault((w.thread_id, w.ns), []).extend(w.rows)
                return []
        return w.rows

    def take(self, run: Run | None) -> Rows:
        """The held writes of one run (or of all), no longer held: to commit (and to
        ``give_back`` if that fails). Writes of runs with no head go with them."""
        with self._lock:
            if run is None:
                rows = [row for held in self._rows.values() for row in held]
                self._rows.clear()
            else:
                rows = self._rows.pop(run, [])
            rows, self._spill = self._spill + rows, []
            return rows

    def release(self, thread_id: str) -> Rows:
        """Forget a run's heads; the writes it still held, to commit (as ``take``)."""
        with self._lock:
            namespaces = self._heads.pop(thread_id, {})
            rows = [row for ns in namespaces for row in self._rows.pop((thread_id, ns), [])]
            rows, self._spill = self._spill + rows, []
            return rows

    def give_back(self, rows: Rows) -> None:
        """Hold again, before any held since, writes taken for a commit that failed."""
        runs: dict[Run, Rows] = {}
        for row in rows:
            runs.setdefault((row[0], row[1]), []).append(row)
        with self._lock:
            for (thread_id, ns), back in runs.items():
                if ns in self._heads.get(thread_id, {}):
                    self._rows[thread_id, ns] = back + self._rows.get((thread_id, ns), [])
                else:
                    self._spill.extend(back)

    def forget(self, thread_ids: Iterable[str]) -> None:
        """Drop what is held for runs being deleted, and their heads."""
        ids = set(thread_ids)
        with self._lock:
            for run in [run for run in self._rows if run[0] in ids]:
                del self._rows[run]
            self._spill = [row for row in self._spill if row[0] not in ids]
            for thread_id in ids:
                self._heads.pop(thread_id, None)

    def pending(
        self, committed: Sequence[Sequence[Any]], run: Run, checkpoint_id: str
    ) -> list[Sequence[Any]]:
        """A checkpoint's pending writes: ``committed`` rows ``(task id, idx, channel,
        type, blob, task path)`` with those held in this process, by the rules of the
        savers' upserts (a special write replaces, another is kept once), in
        LangGraph's order."""
        merged = {(w[0], w[1]): w for w in committed}
        with self._lock:
            rows = [*self._rows.get(run, ()), *(w for w in self._spill if w[:2] == run)]
            held = [w[3:] for w in rows if w[2] == checkpoint_id]
        for w in held:
            if w[1] < 0 or (w[0], w[1]) not in merged:
                merged[(w[0], w[1])] = w
        return sorted(merged.values(), key=lambda w: writes_sort_key(w[5], w[0], w[1]))
