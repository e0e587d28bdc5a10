"""``GuardTripped``: a guard stopped work, with the guard, its limit and the value seen."""

from __future__ import annotations

from typing import ClassVar

from corral.errors import RunError


class GuardTripped(RunError):
    """A guard refused work. Under the ``halt`` policy it ends the run (status halted)."""

    details: ClassVar[tuple[str, ...]] = ("guard", "limit", "seen", "until")

    def __init__(
        self,
        guard: str,
        *,
        limit: float,
        seen: float,
        message: str,
        agent: str | None = None,
        until: float | None = None,
    ) -> None:
        self.guard = guard
        self.limit = limit
        self.seen = seen
        self.until = until
        super().__init__(
            f"guard {guard} tripped (limit {limit:g}, seen {seen:g}): {message}", agent=agent
        )

    def with_agent(self, agent: str) -> GuardTripped:
        """The same trip, naming the agent whose work it stopped."""
        message = str(self).split(": ", 1)[1]
        return GuardTripped(
            self.guard,
            limit=self.limit,
            seen=self.seen,
            message=message,
            agent=agent,
            until=self.until,
        )


class BudgetExceeded(GuardTripped):
    """A model call would pass a budget layer: which agent, layer, limit, used, requested."""

    details = (*GuardTripped.details, "layer", "used", "requested")

    def __init__(
        self, *, agent: str, layer: str, limit: float, used: float, requested: float
    ) -> None:
        self.layer = layer
        self.used = used
        self.requested = requested
        super().__init__(
            "budget",
            limit=limit,
            seen=used + requested,
            agent=agent,
            message=f"agent {agent!r} has used {used:g} of its {layer} budget of "
            f"{limit:g} and this call needs {requested:g} more",
        )

    def with_agent(self, agent: str) -> BudgetExceeded:
        return BudgetExceeded(
            agent=agent,
            layer=self.layer,
            limit=self.limit,
            used=self.used,
            requested=self.requested,
        )
