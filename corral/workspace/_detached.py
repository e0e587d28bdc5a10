"""A workspace that keeps nothing: for a graph compiled without storage (a benchmark, a
graph embedded where corral's bookkeeping is not wanted).

Runs are not registered, calls are not metered or budgeted, events and audit rows are
dropped, tool results are not remembered, breakers stay closed, and context lives in
memory. Delegation needs a task board and is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from corral.errors import RunError
from corral.workspace._report import PruneReport
from corral.workspace._types import (
    NO_RUN_USAGE,
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

_NO_BOARD = "delegation needs a workspace: run the team through team.compile(db=...)"


class _Runs:
    owner = ""
    lease = 60.0

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
        return None

    def pin(self, run_id: str, fingerprint: str, definition: dict[str, Any]) -> None:
        return None

    def update(self, run_id: str, status: RunStatus, *, owned: bool = False, **fields: Any) -> bool:
        return False

    def delete(self, run_id: str) -> None:
        return None

    def take_over(self, run_id: str) -> str | None:
        return None

    def renew(self, run_id: str) -> bool:
        return True  # nothing is held: no other process can take a run over

    def get(self, run_id: str) -> RunRecord | None:
        return None

    def list(self, *, limit: int = 100, status: RunStatus | None = None) -> list[RunRecord]:
        return []


class _Board:
    def create(self, tasks: Sequence[NewTask], limits: Limits | None = None) -> list[Task]:
        raise RunError(_NO_BOARD)

    def refuse(self, tasks: Sequence[NewTask], reason: str) -> None:
        return None

    def claim_many(
        self, task_ids: Sequence[str], claimer: str, lease_seconds: float
    ) -> list[Task | None]:
        raise RunError(_NO_BOARD)

    def claim(self, task_id: str, claimer: str, lease_seconds: float) -> Task | None:
        raise RunError(_NO_BOARD)

    def claim_next(
        self, claimer: str, lease_seconds: float, *, run_id: str | None = None
    ) -> Task | None:
        return None

    def finish_many(self, claimer: str, outcomes: Sequence[tuple[str, TaskStatus, Any]]) -> int:
        return 0

    def complete(self, task_id: str, claimer: str, result: dict[str, Any]) -> bool:
        return False

    def fail(self, task_id: str, claimer: str, error: str) -> bool:
        return False

    def priority(self, task_id: str) -> float | None:
        return None

    def get(self, task_id: str) -> Task | None:
        return None

    def tasks(self, *, run_id: str | None = None) -> list[Task]:
        return []

    def created(self, run_id: str) -> int:
        return 0

    def count(self, *, run_id: str | None = None, status: TaskStatus | None = None) -> int:
        return 0

    def cooldown_until(self) -> float | None:
        return None


class _Ledger:
    def day(self) -> str:
        return ""

    def publish_limits(
        self, limits: Mapping[str, BudgetLimits], team: BudgetLimits | None = None
    ) -> None:
        return None

    def reserve(self, **call: Any) -> int:
        return 0

    def record(self, **call: Any) -> None:
        return None

    def settle(self, row: int, **call: Any) -> Settled:
        return Settled([], None)

    def reply(self, key: str) -> None:
        return None

    def forget(self, keys: list[str]) -> None:
        return None

    def release(self, row: int) -> None:
        return None

    def grant(self, **round: Any) -> dict[str, int]:
        return {}

    def settle_grants(self, parent: str, children: list[str]) -> None:
        return None

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        return []

    def run_usage(self, run_id: str) -> RunUsage:
        return NO_RUN_USAGE

    def report(self, day: str) -> list[dict[str, Any]]:
        return []


class _Log:
    def record(self, *args: Any, **kwargs: Any) -> None:
        return None

    def rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        return []

    def list(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        return []


class _ToolCalls:
    def recorded(self, key: str) -> str | None:
        return None

    def in_doubt(self, slot: str) -> Started | None:
        return None

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        return []

    def begin(self, key: str, *, slot: str, run_id: str, agent: str, tool: str, args: Any) -> None:
        return None

    def record(
        self, key: str, *, run_id: str, agent: str, tool: str, args: Any, result: str
    ) -> None:
        return None

    def failed(self, key: str, error: str) -> None:
        return None


class _Breakers:
    def admit(self, agent: str, spec: BreakerPolicy) -> Verdict:
        return "closed"

    def succeeded(self, agent: str) -> bool:
        return False

    def failed(self, agent: str, spec: BreakerPolicy) -> bool:
        return False

    def states(self) -> dict[str, dict[str, float | str]]:
        return {}


class DetachedWorkspace:
    """The no-op implementation of every storage protocol (see the module docstring)."""

    where = "(detached: nothing is stored)"

    def __init__(self) -> None:
        self.saver = InMemorySaver()
        self.runs = _Runs()
        self.board = _Board()
        self.ledger = _Ledger()
        self.events = _Log()
        self.audit = _Log()
        self.tool_calls = _ToolCalls()
        self.breakers = _Breakers()
        self.store = InMemoryStore()

    def run_summary(self, run_id: str) -> RunSummary:
        return RunSummary(usage=NO_RUN_USAGE, guard_trips=[], tasks_created=0)

    def release(self, run_id: str) -> None:
        """Nothing to forget: the in-memory checkpoints are the run (it resumes from them)."""

    def delete_run(self, run_id: str) -> None:
        return None

    def prune(self, *, older_than: float | None = None, keep: int | None = None) -> PruneReport:
        return PruneReport(runs=0, completed=0, checkpoints=0, freed=0)

    def close(self) -> None:
        return None
