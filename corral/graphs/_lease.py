"""One timer thread per App renews the leases of the runs it drives.

A run's owner renews its lease between steps; a step longer than a lease needs a timer
too. One thread serves every run of an App (a thread started per run cost about as much
as two of a short run's steps); it stops once no run has needed it for ``IDLE_SECONDS``,
and the next run starts it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

log = logging.getLogger("corral.runs")


class Leased(Protocol):
    """A run in progress whose lease may need renewing (``Drive``)."""

    run_id: str
    renew: Callable[[], object] | None
    renew_every: float
    """Seconds between renewals (a third of the lease): the timer looks twice as often."""

    def due(self) -> bool: ...


IDLE_SECONDS = 10.0
"""How long the timer thread waits with no run to renew before it ends."""


class Renewals:
    """The App's lease timer: renews each held run's lease when it is due."""

    def __init__(self, name: str = "corral-leases") -> None:
        self.name = name
        """The timer thread's name."""
        self._held: dict[int, tuple[Leased, float]] = {}  # id -> (run, beat seconds)
        self._changed = threading.Condition()  # guards the fields here; told of changes
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._waiting = IDLE_SECONDS
        """How long the timer thread sleeps now: a run that needs a shorter beat wakes it
        (waking it for every run would cost each run a thread switch)."""

    @contextmanager
    def holding(self, run: Leased) -> Iterator[None]:
        """While the block runs, ``run``'s lease is renewed when due. Nothing to do for a
        run without a lease."""
        if run.renew is None:
            yield
            return
        key, beat = id(run), run.renew_every / 2
        with self._changed:
            self._held[key] = (run, beat)
            self._stopped = False
            if self._thread is None:
                self._waiting = beat
                self._thread = threading.Thread(target=self._beat, name=self.name)
                self._thread.daemon = True
                self._thread.start()
            elif beat < self._waiting:
                self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._held.pop(key, None)

    def stop(self) -> None:
        """End the timer thread (the App closes); a later run starts it again."""
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def _beat(self) -> None:
        idle = False
        with self._changed:
            while not self._stopped:
                beat = min((b for _, b in self._held.values()), default=None)
                if beat is None and idle:
                    break
                idle = beat is None
                self._waiting = IDLE_SECONDS if beat is None else beat
                self._changed.wait(self._waiting)
                runs = [run for run, _ in self._held.values()]
                if runs and not self._stopped:
                    self._changed.release()  # renew outside the lock: a write may wait
                    try:
                        for run in runs:
                            self._renew(run)
                    finally:
                        self._changed.acquire()
            self._thread = None

    def _renew(self, run: Leased) -> None:
        if run.renew is None or not run.due():
            return
        try:
            if run.renew() is False:  # taken over: not ours to keep any more
                with self._changed:
                    self._held.pop(id(run), None)
        except Exception as exc:  # the next beat tries again
            log.warning("could not renew the lease on run %s: %s", run.run_id, exc)
