"""Storage: one owner of every table (runs, checkpoints, tasks, usage, events, audit,
tool calls, context, breakers) behind small typed protocols; SQLite by default, Postgres
(``postgresql://`` URLs, ``corral[scale]``) for more than one machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral._lazy import lazy_exports

if TYPE_CHECKING:
    from corral.workspace._db import ConnectionPool, Synchronous
    from corral.workspace._detached import DetachedWorkspace
    from corral.workspace._doctor import Checkup, TableRead, check_workspace, recover_workspace
    from corral.workspace._pg_url import postgres_url, workspace_label
    from corral.workspace._pg_workspace import PostgresWorkspace as PostgresWorkspace
    from corral.workspace._protocols import (
        AuditLog,
        BreakerStore,
        EventLog,
        Ledger,
        RunRegistry,
        TaskBoard,
        ToolCallLog,
        Workspace,
    )
    from corral.workspace._replies import Recorded, Reply, reply_key, reply_of
    from corral.workspace._saver import CorralSaver
    from corral.workspace._tool_calls import call_slot, idempotency_key
    from corral.workspace._types import (
        DEFAULT_DB,
        NO_RUN_USAGE,
        TEAM,
        Alert,
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
    from corral.workspace._workspace import OpenWorkspace as OpenWorkspace
    from corral.workspace._workspace import SqliteWorkspace, open_workspace

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._db": (
            "ConnectionPool",
            "Synchronous",
        ),
        "._detached": ("DetachedWorkspace",),
        "._doctor": (
            "Checkup",
            "TableRead",
            "check_workspace",
            "recover_workspace",
        ),
        "._pg_url": (
            "postgres_url",
            "workspace_label",
        ),
        "._protocols": (
            "AuditLog",
            "BreakerStore",
            "EventLog",
            "Ledger",
            "RunRegistry",
            "TaskBoard",
            "ToolCallLog",
            "Workspace",
        ),
        "._replies": ("Recorded", "Reply", "reply_key", "reply_of"),
        "._saver": ("CorralSaver",),
        "._tool_calls": (
            "call_slot",
            "idempotency_key",
        ),
        "._types": (
            "DEFAULT_DB",
            "NO_RUN_USAGE",
            "TEAM",
            "Alert",
            "BreakerPolicy",
            "BudgetLimits",
            "Limits",
            "NewTask",
            "RunRecord",
            "RunStatus",
            "RunSummary",
            "RunUsage",
            "Settled",
            "Started",
            "Task",
            "TaskStatus",
            "Verdict",
        ),
        "._workspace": (
            "SqliteWorkspace",
            "open_workspace",
        ),
    },
)

__all__ = [
    "DEFAULT_DB",
    "NO_RUN_USAGE",
    "TEAM",
    "Alert",
    "AuditLog",
    "BreakerPolicy",
    "BreakerStore",
    "BudgetLimits",
    "Checkup",
    "ConnectionPool",
    "CorralSaver",
    "DetachedWorkspace",
    "EventLog",
    "Ledger",
    "Limits",
    "NewTask",
    "Recorded",
    "Reply",
    "RunRecord",
    "RunRegistry",
    "RunStatus",
    "RunSummary",
    "RunUsage",
    "Settled",
    "SqliteWorkspace",
    "Started",
    "Synchronous",
    "TableRead",
    "Task",
    "TaskBoard",
    "TaskStatus",
    "ToolCallLog",
    "Verdict",
    "Workspace",
    "call_slot",
    "check_workspace",
    "idempotency_key",
    "open_workspace",
    "postgres_url",
    "recover_workspace",
    "reply_key",
    "reply_of",
    "workspace_label",
]
