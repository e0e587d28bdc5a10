"""Corral's one error hierarchy.

``CorralError`` is the root. User mistakes (a bad manifest, a bad run input, a bad
workspace path) and run-time failures (an invalid handoff after retries, no route,
a failing node) are separate branches, so callers can tell "change what you gave
me" from "the run went wrong".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


class CorralError(Exception):
    """Root of every error corral raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a manifest: where it is, what is wrong and what to change."""

    message: str
    fix: str
    loc: tuple[str | int, ...] = ()
    file: str | None = None
    line: int | None = None

    @property
    def where(self) -> str:
        """``file:line`` when known, else the dotted field path."""
        path = ".".join(str(p) for p in self.loc) or "<team>"
        if self.file is not None:
            return f"{self.file}:{self.line or 1}" + (f" ({path})" if self.loc else "")
        return path

    def __str__(self) -> str:
        return f"{self.where}: {self.message}. Fix: {self.fix}"


class UserError(CorralError):
    """Something the caller gave corral is wrong; changing it fixes the error."""


class ManifestError(UserError):
    """A team definition is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the team definition"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


class InputError(UserError):
    """A run input, run id, or workspace path passed by the caller is invalid."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class RunError(CorralError):
    """A run could not go on. ``agent`` names the node at fault where there is one."""

    details: ClassVar[tuple[str, ...]] = ()
    """The attributes a subclass adds to ``to_dict``."""

    def __init__(self, message: str, *, agent: str | None = None) -> None:
        self.agent = agent
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, stored with the run and printed by the CLI."""
        return {
            "type": type(self).__name__,
            "agent": self.agent,
            "message": str(self),
            **{name: getattr(self, name) for name in self.details},
        }


class HandoffError(RunError):
    """An agent's payload stayed invalid for its edge schema after every retry."""

    details = ("schema", "errors", "attempts")

    def __init__(self, *, agent: str, schema: str, errors: list[str], attempts: int) -> None:
        self.schema = schema
        self.errors = list(errors)
        self.attempts = attempts
        listed = "; ".join(errors[:5])
        super().__init__(
            f"agent {agent!r} produced no valid {schema} after {attempts} attempt(s): {listed}",
            agent=agent,
        )


class RoutingError(RunError):
    """No outgoing edge of an agent matched its (valid) payload."""


class NodeError(RunError):
    """A function node or a model call raised; the original error is the cause."""
