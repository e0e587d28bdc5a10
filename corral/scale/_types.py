"""What a run's workflow and its activities pass each other (plain dataclasses: Temporal's
JSON converter carries them, and the workflow sandbox imports nothing heavy for them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

WORKFLOW = "CorralRun"
ADVANCE = "corral.advance"
"""The activity that runs the team's graph from its last checkpoint until it stops."""
CANCELLED = "corral.cancelled"
"""The activity that records a run cancelled while no activity was running it."""
FANOUT = "CorralFanout"
"""The workflow that runs one delegation round's subtasks, one activity each."""
SUBTASK = "corral.subtask"
"""The activity that runs one claimed subtask (on the team's subtask queue)."""
SUBTASKS = "/subtasks"
"""A team queue's subtask activities go to the queue named this much longer."""


def supervised(heartbeat_seconds: float, *never: str, attempts: int = 0) -> dict[str, Any]:
    """How every corral activity runs: a week to finish, a heartbeat, retries backing off
    from 0.2 s to 10 s (``attempts``: at most that many tries; 0, no limit), never after
    the error types ``never``."""
    return {
        "start_to_close_timeout": timedelta(days=7),
        "heartbeat_timeout": timedelta(seconds=heartbeat_seconds),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(milliseconds=200),
            maximum_interval=timedelta(seconds=10),
            maximum_attempts=attempts,
            non_retryable_error_types=list(never),
        ),
    }


@dataclass(frozen=True)
class Decision:
    """A person's decision on a paused run's review: approve, reject (why) or edit."""

    approve: bool = False
    reject: str | None = None
    edit: dict[str, Any] | None = None

    @property
    def given(self) -> bool:
        """True when it decides something."""
        return self.approve or self.reject is not None or self.edit is not None


@dataclass(frozen=True)
class Start:
    """A workflow's input: the run, its input, and how its activities are supervised."""

    run_id: str
    input: dict[str, Any] | None
    """The run's input; ``None`` resumes a run that exists (failed, halted, crashed)."""
    heartbeat_seconds: float = 10.0
    max_attempts: int = 0
    """Attempts per activity before the workflow fails (0: no limit)."""


@dataclass(frozen=True)
class Step:
    """One activity: start the run (``input``), or resume it (with a ``decision``)."""

    run_id: str
    input: dict[str, Any] | None = None
    decision: Decision | None = None


@dataclass(frozen=True)
class Outcome:
    """Where an activity left the run: its result (``RunResult.to_dict()``), and what the
    workflow waits for before the next activity: ``review`` (a ``decide`` signal, or the
    review's deadline ``until``), ``cooldown`` (a durable timer until ``until``) or
    nothing (the run ended)."""

    result: dict[str, Any]
    wait: str = ""
    until: float | None = None
    worker: str = ""
    """The worker identity that ran the activity."""


@dataclass
class State:
    """What ``state`` queries and ``settled`` updates answer."""

    state: str = "starting"
    """starting, running, paused, deciding, cooling, done or cancelled."""
    result: dict[str, Any] | None = None
    refused: str | None = None
    """Why the last decision was refused (the run stays paused)."""
    activities: int = 0
    workers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FanOut:
    """A fan-out workflow's input: one delegation round's claimed subtasks."""

    run_id: str
    tasks: list[dict[str, Any]]
    deadline: list[float] | None = None
    """The run's deadline (when, how long), if it has one."""
    activities: int = 200
    """At most this many subtask activities: a larger round's subtasks go in batches."""
    heartbeat_seconds: float = 10.0


@dataclass(frozen=True)
class Job:
    """One subtask activity: a batch of claimed subtasks of a run (run together)."""

    run_id: str
    tasks: list[dict[str, Any]]
    deadline: list[float] | None = None
