"""Scoped context (private, team, global) with TTLs, audit, and the agents' context tools."""

from corral.context._effects import ToolCalls, idempotency_key
from corral.context._store import AuditLog, ContextStore, PermissionDenied, Scope, Who
from corral.context._tools import context_tools

__all__ = [
    "AuditLog",
    "ContextStore",
    "PermissionDenied",
    "Scope",
    "ToolCalls",
    "Who",
    "context_tools",
    "idempotency_key",
]
