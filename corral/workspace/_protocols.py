"""The storage protocols: what the runtime asks of a workspace, whatever the backend.

Each protocol is small and typed. Checks that must be atomic with their writes (task
creation under the rate and pending limits, claims, budget reservations, breaker
transitions) are single methods, so every backend can make each one transaction.
The behaviour tests in ``tests/workspace`` are written once against these protocols
and run against every backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from corral.workspace._types import (
    BreakerPolicy,
    BudgetLimits,
    Limits,
    NewTask,
    RunRecord,
    RunStatus,
    RunSummary,
    RunUsage,
    Settled,
    Started,
    Task,
    TaskStatus,
    Verdict,
)

if TYPE_CHECKING:
    from corral.workspace._replies import Recorded, Reply
    from corral.workspace._report import PruneReport


class RunRegistry(Protocol):
    """One record per run (its id is LangGraph's thread id), owned by the process that
    drives it for ``lease`` seconds at a time."""

    owner: str
    """This process as the owner of the runs it drives (``host:pid:token``)."""
    lease: float

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
        """Record a new run as ``running``, pinned to its team's definition; if the id
        is taken, write nothing and return the status of the run already there."""
        ...

    def pin(self, run_id: str, fingerprint: str, definition: dict[str, Any]) -> None:
        """Pin the run to a new team definition."""
        ...

    def update(self, run_id: str, status: RunStatus, *, owned: bool = False, **fields: Any) -> bool:
        """Set a run's status (and output, errors, path; a ``usage`` is not kept: a run's
        account is the ledger's) and make it this process's. ``ValueError`` for any other
        field. ``owned``: only if the run is still this process's (a driver another took
        the run over from leaves the record to it); False if nothing was written."""

    def take_over(self, run_id: str) -> str | None:
        """Mark the run ``running`` and owned here unless another live holder has it (on
        this host: its process lives; on another: its lease has not ended), atomically;
        ``None`` if taken, else the holder (``host:pid:token``)."""

    def renew(self, run_id: str) -> bool:
        """Extend this process's lease on a run it drives (``False``: not its own)."""

    def delete(self, run_id: str) -> None:
        """Forget a run."""

    def get(self, run_id: str) -> RunRecord | None:
        """The run with this id, or ``None``."""

    def list(self, *, limit: int = 100, status: RunStatus | None = None) -> list[RunRecord]:
        """The most recent runs first (only those with ``status`` if given)."""


class TaskBoard(Protocol):
    """Every subtask as a row: created under the workspace limits, claimed by
    compare-and-set, finished once."""

    def create(self, tasks: Sequence[NewTask], limits: Limits | None = None) -> list[Task]:
        """Create tasks atomically after the workspace guards (``GuardTripped`` if not)."""

    def refuse(self, tasks: Sequence[NewTask], reason: str) -> None:
        """Record delegations that were refused."""

    def claim_many(
        self, task_ids: Sequence[str], claimer: str, lease_seconds: float
    ) -> list[Task | None]:
        """Claim several tasks in one transaction; ``None`` where another holds one."""

    def claim(self, task_id: str, claimer: str, lease_seconds: float) -> Task | None:
        """Claim one task (or get it back if it is done)."""

    def claim_next(
        self, claimer: str, lease_seconds: float, *, run_id: str | None = None
    ) -> Task | None:
        """Claim the open task with the best rank."""

    def finish_many(self, claimer: str, outcomes: Sequence[tuple[str, TaskStatus, Any]]) -> int:
        """Record results and failures of tasks ``claimer`` holds; how many took."""

    def complete(self, task_id: str, claimer: str, result: dict[str, Any]) -> bool:
        """Record a result if ``claimer`` still holds the task."""

    def fail(self, task_id: str, claimer: str, error: str) -> bool:
        """Record a failure if ``claimer`` still holds the task."""

    def priority(self, task_id: str) -> float | None:
        """The task's score now."""

    def get(self, task_id: str) -> Task | None:
        """The task with this id."""

    def tasks(self, *, run_id: str | None = None) -> list[Task]:
        """Every task (of one run), oldest first."""

    def created(self, run_id: str) -> int:
        """Tasks a run created (refusals not counted)."""

    def count(self, *, run_id: str | None = None, status: TaskStatus | None = None) -> int:
        """How many tasks (of one run, with one status)."""

    def cooldown_until(self) -> float | None:
        """When the creation cooldown ends, if one is in force."""


class Ledger(Protocol):
    """Every model call as a row, reserved against the budget before and settled after."""

    def day(self) -> str:
        """Today (UTC), the unit of daily budgets."""

    def publish_limits(
        self, limits: Mapping[str, BudgetLimits], team: BudgetLimits | None = None
    ) -> None:
        """Record the daily limits for reports."""

    def reserve(
        self,
        *,
        run_id: str,
        task_key: str,
        agent: str,
        model: str,
        tokens: int,
        cost: float,
        limits: BudgetLimits,
        call: str | None = None,
    ) -> int:
        """Reserve a call against every layer (``BudgetExceeded`` if it would pass one);
        ``call``: its reply key, kept with the row in the same transaction."""

    def record(
        self,
        *,
        run_id: str,
        task_key: str,
        agent: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int,
        cost: float | None,
        latency_ms: float,
        content: str | None = None,
        reply: Reply | None = None,
    ) -> None:
        """Record a call that had no limit to reserve against (``content``: what the trace
        keeps of its prompt and answer, as JSON; ``reply``: its answer, kept in the same
        transaction for a re-executed task to replay)."""

    def settle(
        self,
        row: int,
        *,
        agent: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int,
        cost: float | None,
        latency_ms: float,
        limits: BudgetLimits,
        content: str | None = None,
        reply: Reply | None = None,
    ) -> Settled:
        """Record a reserved call's real usage (and ``reply``, as ``record``); the alerts
        it crossed."""

    def release(self, row: int) -> None:
        """Give back a reservation whose call failed."""

    def reply(self, key: str) -> Recorded | None:
        """What is recorded of the model call ``key``: its answer if it settled, else
        its reservation's row if it was reserved."""

    def forget(self, keys: list[str]) -> None:
        """Keep no answer of the model calls ``keys`` to replay (they stay billed)."""

    def grant(
        self,
        *,
        agent: str,
        parent: str,
        limit: int | None,
        asks: list[tuple[str, float | None, int | None]],
    ) -> dict[str, int]:
        """Carve a round's grants (task key: tokens) from ``parent``'s remaining task
        budget in one transaction (``BudgetExceeded`` if too little is left)."""

    def settle_grants(self, parent: str, children: list[str]) -> None:
        """At a round's join: each child's grant becomes what the child spent."""

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """A run's model calls, oldest first."""

    def run_usage(self, run_id: str) -> RunUsage:
        """A run's account: tokens, calls and cost of its settled calls."""

    def report(self, day: str) -> list[dict[str, Any]]:
        """Per agent and the team: usage on ``day`` against the limits."""


class EventLog(Protocol):
    """What happened in a run besides its steps: trips, refusals, failures, alerts."""

    def record(self, run_id: str, kind: str, agent: str | None, data: dict[str, Any]) -> None:
        """Append one event."""

    def list(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """A run's events (of one kind), oldest first."""


class AuditLog(Protocol):
    """Who did what to which context or tool, and the verdict."""

    def record(
        self,
        run_id: str,
        agent: str,
        action: str,
        *,
        scope: str,
        target: str,
        verdict: str,
        reason: str = "",
    ) -> None:
        """Append one audit row."""

    def rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Audit rows (of one run), oldest first."""


class ToolCallLog(Protocol):
    """Each tool call's start, then its result, by idempotency key: a call already made is
    not made again, and one a crash left unfinished is known to be in doubt."""

    def recorded(self, key: str) -> str | None:
        """The result of a call already made, if any."""

    def in_doubt(self, slot: str) -> Started | None:
        """A call at ``slot`` that started and never finished, if any."""

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        """A run's tool calls (agent, tool, args, result, at, state), oldest first."""

    def begin(self, key: str, *, slot: str, run_id: str, agent: str, tool: str, args: Any) -> None:
        """Record that a call is about to run (durable before the tool is called)."""

    def record(
        self, key: str, *, run_id: str, agent: str, tool: str, args: Any, result: str
    ) -> None:
        """Record a call's result, or a decision about a call in doubt (first wins)."""

    def failed(self, key: str, error: str) -> None:
        """The tool raised: the call is over, not in doubt."""


class BreakerStore(Protocol):
    """Circuit breaker states shared by every run and process."""

    def admit(self, agent: str, spec: BreakerPolicy) -> Verdict:
        """May a call of ``agent`` go through (``probe``: as the half-open probe, held for
        one cooldown)?"""

    def succeeded(self, agent: str) -> bool:
        """Record a success; True if it closed the breaker."""

    def failed(self, agent: str, spec: BreakerPolicy) -> bool:
        """Record a failure; True if it opened the breaker."""

    def states(self) -> dict[str, dict[str, float | str]]:
        """Every breaker that is not closed and clean."""


class Workspace(Protocol):
    """One owner of all durable state, behind the protocols above."""

    @property
    def where(self) -> str:
        """Where the workspace lives (a file path or a URL), for messages."""

    @property
    def saver(self) -> BaseCheckpointSaver[Any]:
        """The checkpointer."""

    def release(self, run_id: str) -> None:
        """Forget what the checkpointer keeps in memory for a run that ended or paused
        (committing what it still holds); a run that goes on later is read back."""

    @property
    def runs(self) -> RunRegistry: ...
    @property
    def board(self) -> TaskBoard: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def events(self) -> EventLog: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def tool_calls(self) -> ToolCallLog: ...
    @property
    def breakers(self) -> BreakerStore: ...
    @property
    def store(self) -> BaseStore:
        """The key-value store under scoped context."""

    def run_summary(self, run_id: str) -> RunSummary:
        """A run's account, guard trips (each cause once) and tasks created, read in one
        snapshot."""

    def delete_run(self, run_id: str) -> None:
        """Forget a run: its checkpoints, record, calls, events, audit rows, tasks, tool
        calls and running totals (the day totals of agents and the team stay), in one
        transaction that refuses a run another process drives (``InputError``)."""

    def prune(self, *, older_than: float | None = None, keep: int | None = None) -> PruneReport:
        """Forget ended runs last updated more than ``older_than`` seconds ago (as
        ``delete_run``), trim completed runs to their newest ``keep`` checkpoints, and
        ``VACUUM``."""

    def close(self) -> None:
        """Close every connection."""


__all__ = [
    "AuditLog",
    "BreakerStore",
    "EventLog",
    "Ledger",
    "RunRegistry",
    "TaskBoard",
    "ToolCallLog",
    "Workspace",
]
