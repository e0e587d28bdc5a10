"""The values storage hands in and out: records, tasks, limits, alerts.

They are plain frozen dataclasses so every backend returns the same shapes, and so
policy layers above (guards, budgets) can pass limits down without storage knowing
the manifest.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict

RunStatus = Literal["running", "completed", "failed", "halted", "paused", "cancelled"]
TaskStatus = Literal["pending", "claimed", "done", "failed", "refused"]
Verdict = Literal["closed", "open", "probe"]
TEAM = "__team__"
DEFAULT_DB = Path(".corral") / "corral.db"
"""Where a workspace lives when neither ``--db`` nor the manifest says (here, among
light imports, so that ``corral --help`` can say it)."""
"""The ledger's name for the whole team (its daily totals and limits)."""


class RunUsage(TypedDict):
    """A run's account, summed from its settled ledger rows: the one source of every
    usage a run reports (its result, ``--json``, ``corral runs``, its trace)."""

    input_tokens: int
    output_tokens: int
    llm_calls: int
    cost_usd: float | None
    """``None`` when any call's price is unknown."""


NO_RUN_USAGE = RunUsage(input_tokens=0, output_tokens=0, llm_calls=0, cost_usd=0.0)


@dataclass(frozen=True)
class Started:
    """A tool call that started and never finished: its effect may or may not have
    happened."""

    key: str
    tool: str
    args: Any
    at: float


@dataclass(frozen=True)
class RunRecord:
    """What the registry knows about one run."""

    run_id: str
    team: str
    manifest: str | None
    status: RunStatus
    started_at: str
    updated_at: str
    pid: int | None
    input: dict[str, Any]
    output: dict[str, Any] | None
    errors: list[dict[str, Any]]
    usage: RunUsage
    """Read from the ledger, never stored with the run."""
    path: list[str]
    fingerprint: str | None = None
    """The hash of the team definition the run is pinned to (``None``: an older run)."""
    definition: dict[str, Any] | None = field(default=None, repr=False)
    """That team definition, as JSON (left out of the record's repr: it is long)."""
    owner: str | None = None
    """The process that drives (or last drove) the run: ``host:pid:token``."""
    expires_at: float | None = None
    """When the owner's lease on the run ends unless it is renewed (epoch seconds)."""

    @property
    def stale(self) -> bool:
        """A ``running`` run whose process is gone: it crashed and can be resumed."""
        if self.status != "running":
            return False
        return not held(self.owner, self.pid, self.expires_at, None, time.time())


LEASE_SECONDS = 60.0
"""How long a run's owner holds it without renewing (the driver renews at a third)."""


def owner_id() -> str:
    """A new owner string for this process: ``host:pid:random token``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"


def held(
    owner: str | None, pid: int | None, expires_at: float | None, me: str | None, now: float
) -> bool:
    """True while a holder other than ``me`` may still drive the run: on this host,
    while its process lives (the exact answer, whatever its lease says: a step longer
    than a lease is not cut short); another App of this process, or a holder on another
    host, until its lease ends. (A row from before owners were kept has only a pid, read
    on this host.)"""
    if owner is None:
        return pid is not None and pid != os.getpid() and alive(pid)
    if owner == me:
        return False
    parts = owner.split(":")
    if ":".join(parts[:-2]) == socket.gethostname():
        their_pid = int(parts[-2])
        if their_pid != os.getpid():
            return alive(their_pid)
    return expires_at is not None and expires_at > now


def alive(pid: int) -> bool:
    """True while process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class NewTask:
    """A subtask to create."""

    id: str
    run_id: str
    assignee: str
    depth: int
    instruction: str
    payload: dict[str, Any]
    parent_id: str | None = None
    impact: float = 0.0
    modifier: float = 0.0
    blocked: int = 0


@dataclass(frozen=True)
class Task:
    """A row of the task board."""

    id: str
    run_id: str
    parent_id: str | None
    assignee: str
    depth: int
    status: TaskStatus
    instruction: str
    payload: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    claimer: str | None
    lease_until: float | None
    created_at: float
    attempts: int


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Workspace-wide limits checked in the same transaction that creates tasks."""

    rate_count: int | None = None
    rate_seconds: float = 3600.0
    cooldown_seconds: float = 0.0
    max_pending: int | None = None


@dataclass(frozen=True, kw_only=True)
class BudgetLimits:
    """One agent's effective budget, every layer, resolved once when a team compiles.

    Per call: ``max_input_tokens`` (trimmed if ``trim_input``, else refused) and
    ``max_output_tokens``. Per task: ``task_tokens`` and ``task_calls``. Per day (UTC):
    the agent's ``daily_tokens`` and ``daily_cost`` and the team's, each with an alert
    threshold and a hard stop. Per run: ``run_tokens`` and ``run_cost``. ``granted``:
    the agent's subtasks may run on a grant from a supervisor's task budget, so its
    calls are reserved. ``None`` means no limit.
    """

    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    trim_input: bool = False
    task_tokens: int | None = None
    task_calls: int | None = None
    daily_tokens: int | None = None
    daily_cost: float | None = None
    team_daily_tokens: int | None = None
    team_daily_cost: float | None = None
    hard_stop: bool = True
    team_hard_stop: bool = True
    alert_threshold: float = 0.8
    team_alert_threshold: float = 0.8
    run_tokens: int | None = None
    run_cost: float | None = None
    granted: bool = False

    @property
    def limited(self) -> bool:
        """True when a call must be reserved and checked before it is made."""
        return (
            self.max_input_tokens is not None
            or self.granted
            or any(
                value is not None
                for value in (
                    self.task_tokens,
                    self.task_calls,
                    self.daily_tokens,
                    self.daily_cost,
                    self.team_daily_tokens,
                    self.team_daily_cost,
                    self.run_tokens,
                    self.run_cost,
                )
            )
        )


@dataclass(frozen=True)
class Alert:
    """Spending crossed a threshold (once per agent, or the team, per day)."""

    agent: str
    day: str
    layer: str
    used: float
    limit: float
    threshold: float


@dataclass(frozen=True)
class Settled:
    """What settling a call found: the alerts it crossed and, where the agent has a daily
    token limit, the agent's tokens today (read in the same transaction)."""

    alerts: list[Alert]
    agent_tokens_today: int | None


class BreakerPolicy(Protocol):
    """When a breaker opens and for how long (``BreakerSpec`` is one)."""

    @property
    def failures(self) -> int: ...
    @property
    def window_seconds(self) -> float: ...
    @property
    def cooldown_seconds(self) -> float: ...


@dataclass(frozen=True)
class RunSummary:
    """What a run's result reports besides its state, read in one snapshot."""

    usage: RunUsage
    guard_trips: list[dict[str, Any]]
    """Each cause once (the first trip of it), with ``count``: how often it tripped."""
    tasks_created: int
