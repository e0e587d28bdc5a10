"""Scoped context (private, team, global) with TTLs and audit, and the agents' context tools."""

from corral.context._store import ContextStore, Scope
from corral.context._tools import context_tools

__all__ = ["ContextStore", "Scope", "context_tools"]
