"""``GuardTripped``: a guard stopped work, with the guard, its limit and the value seen."""

from __future__ import annotations

from typing import Any

from corral.errors import RunError


class GuardTripped(RunError):
    """A guard refused work. Under the ``halt`` policy it ends the run (status halted)."""

    def __init__(self, guard: str, *, limit: float, seen: float, message: str,
                 agent: str | None = None, until: float | None = None) -> None:
        self.guard = guard
        self.limit = limit
        self.seen = seen
        self.until = until
        super().__init__(f"guard {guard} tripped (limit {limit:g}, seen {seen:g}): {message}",
                         agent=agent)

    def with_agent(self, agent: str) -> GuardTripped:
        """The same trip, naming the agent whose work it stopped."""
        message = str(self).split(": ", 1)[1]
        return GuardTripped(self.guard, limit=self.limit, seen=self.seen, message=message,
                            agent=agent, until=self.until)

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"guard": self.guard, "limit": self.limit,
                                    "seen": self.seen, "until": self.until}
