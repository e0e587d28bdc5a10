"""Scoped context (private, team, global) with TTLs, audit, and the agents' context tools."""

from corral.context._store import AuditLog, ContextStore, PermissionDenied, Scope, Who
from corral.context._tools import context_tools

__all__ = ["AuditLog", "ContextStore", "PermissionDenied", "Scope", "Who", "context_tools"]
