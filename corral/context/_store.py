"""Scoped context over the workspace's LangGraph ``BaseStore``.

Three scopes, each a store namespace under the team's name:

- private (per agent): working notes only that agent reads and writes; they expire
  (24 hours by default).
- team (per ``team:`` of the manifest): results agents ``publish`` from their private
  notes; members read them, and so does any manager above a member (audited).
- global: reference data everyone may read; only supervisors (or agents with
  ``can_write_global``) and the operator API write it.

Nothing is shared unless published. Expiry is enforced on every read (the store alone
may return expired items). Keys and values are validated; every value is bound as a
parameter by the store, never spliced into SQL. Denied attempts raise
``PermissionDenied`` and, like every cross-boundary access, are audited.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, Literal

from langgraph.store.base import BaseStore

from corral.errors import PermissionDenied
from corral.manifest import Who
from corral.workspace import AuditLog

Scope = Literal["private", "team", "global"]
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_VALUE_BYTES = 16_000
NOTE_TTL = 24 * 3600.0


class ContextStore:
    """The three scopes of one team's context, with their rules."""

    def __init__(
        self,
        store: Callable[[], BaseStore],
        team: str,
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
        note_ttl: float = NOTE_TTL,
        on_denied: Callable[[PermissionDenied, str], None] | None = None,
    ) -> None:
        store()  # opened now (its setup), not by the first runs' threads at once
        self._store = store
        self.team = team
        self.audit = audit
        self.clock = clock
        self.note_ttl = note_ttl
        self.on_denied = on_denied

    @property
    def store(self) -> BaseStore:
        """The workspace's store, asked for at each use (a closed workspace refuses)."""
        return self._store()

    def _ns(self, scope: Scope, owner: str | None) -> tuple[str, ...]:
        return ("corral", self.team, scope, *([owner] if owner else []))

    # -- the rules ------------------------------------------------------------------

    def _deny(
        self, run_id: str, who: Who, action: str, *, scope: str, target: str, reason: str
    ) -> PermissionDenied:
        self.audit.record(
            run_id, who.agent, action, scope=scope, target=target, verdict="denied", reason=reason
        )
        denied = PermissionDenied(
            agent=who.agent, action=action, scope=scope, target=target, reason=reason
        )
        if self.on_denied is not None:
            self.on_denied(denied, run_id)
        return denied

    def _key(self, run_id: str, who: Who, action: str, scope: str, key: str) -> str:
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise self._deny(
                run_id,
                who,
                action,
                scope=scope,
                target=str(key)[:100],
                reason="keys are 1-100 letters, digits, '.', '_' or '-'",
            )
        return key

    def _readable_team(self, run_id: str, who: Who, team: str | None) -> str:
        team = team or who.team
        if team is None:
            raise self._deny(
                run_id, who, "read", scope="team", target="", reason="the agent belongs to no team"
            )
        if team != who.team and team not in who.managed_teams:
            raise self._deny(
                run_id,
                who,
                "read",
                scope="team",
                target=team,
                reason="only members of a team and their managers read its context",
            )
        return team

    # -- reads ----------------------------------------------------------------------

    def read(self, run_id: str, who: Who, scope: Scope, key: str, team: str | None = None) -> Any:
        """One value the agent may read (``None`` if absent or expired)."""
        key = self._key(run_id, who, "read", scope, key)
        owner = self._owner(run_id, who, scope, team)
        item = self.store.get(self._ns(scope, owner), key)
        value = self._live(scope, owner, key, item.value if item else None)
        self._audit_crossing(run_id, who, "read", scope=scope, owner=owner, key=key)
        return value

    def entries(
        self, run_id: str, who: Who, scope: Scope, team: str | None = None
    ) -> dict[str, Any]:
        """Every live entry of a scope the agent may read, oldest first."""
        owner = self._owner(run_id, who, scope, team)
        found = {}
        for item in self.store.search(self._ns(scope, owner), limit=1000):
            value = self._live(scope, owner, item.key, item.value)
            if value is not None:
                found[item.key] = value
        if found:
            self._audit_crossing(run_id, who, "list", scope=scope, owner=owner, key="*")
        return found

    def _owner(self, run_id: str, who: Who, scope: Scope, team: str | None) -> str | None:
        if scope == "private":
            if team is not None:
                raise self._deny(
                    run_id,
                    who,
                    "read",
                    scope="private",
                    target=str(team)[:100],
                    reason="private notes are read by their own agent only",
                )
            return who.agent
        if scope == "team":
            return self._readable_team(run_id, who, team)
        return None

    def _live(self, scope: Scope, owner: str | None, key: str, stored: Any) -> Any:
        if stored is None:
            return None
        expires = stored.get("expires_at")
        if expires is not None and expires <= self.clock():
            self.store.delete(self._ns(scope, owner), key)  # expired: gone for good
            return None
        return stored.get("value")

    def _audit_crossing(
        self, run_id: str, who: Who, action: str, *, scope: str, owner: str | None, key: str
    ) -> None:
        if scope == "global" or (scope == "team" and owner != who.team):
            self.audit.record(
                run_id,
                who.agent,
                action,
                scope=scope,
                target=f"{owner}/{key}" if owner else key,
                verdict="allowed",
            )

    # -- writes ---------------------------------------------------------------------

    def _value(
        self,
        run_id: str,
        who: Who,
        action: str,
        *,
        scope: str,
        key: str,
        value: Any,
        ttl: float | None,
    ) -> dict[str, Any]:
        try:
            size = len(json.dumps(value))
        except (TypeError, ValueError):
            raise self._deny(
                run_id, who, action, scope=scope, target=key, reason="values must be JSON data"
            ) from None
        if size > MAX_VALUE_BYTES:
            raise self._deny(
                run_id,
                who,
                action,
                scope=scope,
                target=key,
                reason=f"the value is {size} bytes; at most {MAX_VALUE_BYTES} fit",
            )
        return {
            "value": value,
            "by": who.agent,
            "at": self.clock(),
            "expires_at": self.clock() + ttl if ttl is not None else None,
        }

    def write_note(
        self, run_id: str, who: Who, key: str, value: Any, ttl: float | None = None
    ) -> None:
        """Write a private working note (expires after ``ttl`` or the default)."""
        key = self._key(run_id, who, "write", "private", key)
        stored = self._value(
            run_id,
            who,
            "write",
            scope="private",
            key=key,
            value=value,
            ttl=ttl if ttl is not None else self.note_ttl,
        )
        self.store.put(self._ns("private", who.agent), key, stored)

    def publish(self, run_id: str, who: Who, key: str, ttl: float | None = None) -> None:
        """Move one of the agent's own notes into its team's context (kept unless ``ttl``)."""
        key = self._key(run_id, who, "publish", "team", key)
        if who.team is None:
            raise self._deny(
                run_id,
                who,
                "publish",
                scope="team",
                target=key,
                reason="the agent belongs to no team",
            )
        note = self.read(run_id, who, "private", key)
        if note is None:
            raise self._deny(
                run_id,
                who,
                "publish",
                scope="team",
                target=key,
                reason="there is no live private note with that key to publish",
            )
        stored = self._value(run_id, who, "publish", scope="team", key=key, value=note, ttl=ttl)
        self.store.put(self._ns("team", who.team), key, stored)
        self.store.delete(self._ns("private", who.agent), key)

    def write_global(
        self, run_id: str, who: Who | None, key: str, value: Any, ttl: float | None = None
    ) -> None:
        """Write reference data; ``who=None`` is the operator."""
        actor = who or Who(agent="operator", team=None, supervisor=True)
        key = self._key(run_id, actor, "write", "global", key)
        if not (actor.supervisor or actor.can_write_global):
            raise self._deny(
                run_id,
                actor,
                "write",
                scope="global",
                target=key,
                reason="only supervisors (or agents with can_write_global) write global context",
            )
        stored = self._value(run_id, actor, "write", scope="global", key=key, value=value, ttl=ttl)
        self.store.put(self._ns("global", None), key, stored)
        self.audit.record(
            run_id, actor.agent, "write", scope="global", target=key, verdict="allowed"
        )
