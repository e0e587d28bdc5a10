"""Every exception corral raises, in one tree.

User mistakes ("change what you gave me") and run-time failures ("the run went
wrong") are separate branches, so callers can tell them apart::

    CorralError
    ├── UserError                 something the caller gave is wrong; changing it fixes it
    │   ├── ManifestError         a team definition is invalid (every Problem, with file:line)
    │   ├── InputError            a run input, run id, workspace path or review decision
    │   ├── ManifestChanged       a run's team changed in a way the run cannot go on under
    │   └── WorkspaceDamaged      the workspace file is damaged (see ``corral doctor``)
    └── RunError                  a run could not go on (``agent`` names the node at fault)
        ├── HandoffError          a payload stayed invalid for its edge schema after retries
        ├── RoutingError          no outgoing edge matched a valid payload
        ├── NodeError             a function node or a model call raised (the cause is kept)
        ├── BreakerOpen           an agent's circuit breaker is open; its calls are skipped
        ├── CheckpointError       a stored checkpoint cannot be decoded
        ├── PermissionDenied      an agent tried what its place in the team does not allow
        ├── EffectInDoubt         a crash left a tool call started and unfinished (``fail``)
        ├── GuardTripped          a guard refused work (guard, limit, value seen)
        │   ├── BudgetExceeded    a model call would pass a budget layer
        │   ├── StepLimitExceeded the run took more than ``guards.max_steps`` steps
        │   ├── DeadlinePassed    the run passed ``guards.run_deadline_seconds``
        │   ├── LoopDetected      the same tool call or delegation came too often in a task
        │   └── CooldownActive    the workspace cools down after the task creation rate
        ├── ReviewPending         the run waits for a person (it is paused, not failed)
        ├── Rejected              a person rejected the run's work
        └── NoOutput              the run ended without reaching END

    ScriptedProviderError         what a provider would raise, injected by a script; not a
    ├── ScriptedTimeoutError      CorralError, so corral treats it like a real provider's
    └── ScriptedConnectionError   error (classified, retried, recorded)
    CallTimeout                   a call outlived its ``retry.timeout`` (a ``TimeoutError``)
    SDKRetriesWarning             a chat model retries inside its SDK, hidden from corral

``RunError.to_dict()`` is the JSON form stored with a run; ``RunError.from_dict()``
rebuilds the typed error from it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
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


def suggest(name: str, choices: Iterable[str]) -> str:
    """A ``Problem``'s hint for an unknown name: ``did you mean 'x'?`` when a close match
    exists, else the known names."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(name, options, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known: {', '.join(options) or 'none'}"


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
    """A run input, run id, workspace path or review decision passed by the caller is invalid."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class ManifestChanged(UserError):
    """The team file changed since the run started, in a way the run cannot go on under
    (``changes``: every change, one line each); resume with ``migrate`` to go on anyway."""

    def __init__(self, run_id: str, changes: list[str]) -> None:
        self.run_id = run_id
        self.changes = list(changes)
        super().__init__(
            f"the team changed since run {run_id!r} started, in ways it cannot go on under:\n"
            + "\n".join(f"  {line}" for line in self.changes)
            + "\nRestore the old team file, or resume with --migrate (migrate=True) to go on "
            "under the new one"
        )


class WorkspaceDamaged(UserError):
    """The workspace file at ``path`` is damaged; corral writes nothing more into it."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"the workspace {path} is damaged ({reason}); corral will not write into it. "
            f"Check it with `corral doctor {path}`, and copy out what can be read with "
            f"`corral doctor {path} --recover NEW.db`"
        )


class RunError(CorralError):
    """A run could not go on. ``agent`` names the node at fault where there is one."""

    details: ClassVar[tuple[str, ...]] = ()
    """The attributes a subclass adds to ``to_dict``."""

    def __init__(self, message: str, *, agent: str | None = None) -> None:
        self.agent = agent
        super().__init__(message)

    @property
    def message(self) -> str:
        """The error's text."""
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, stored with the run and printed by the CLI."""
        return {
            "type": type(self).__name__,
            "agent": self.agent,
            "message": str(self),
            **{name: getattr(self, name) for name in self.details},
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> RunError:
        """The typed error ``to_dict`` described (a plain ``RunError`` for unknown types)."""
        kind = _KINDS.get(str(data.get("type")), RunError)
        error = RunError.__new__(kind)
        Exception.__init__(error, str(data.get("message", "")))
        error.agent = data.get("agent")
        for name in kind.details:
            setattr(error, name, data.get(name))
        return error


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


class BreakerOpen(RunError):
    """The agent's circuit breaker is open: its calls are skipped for now."""


class CheckpointError(RunError):
    """A stored checkpoint could not be decoded (corrupt or tampered with)."""


class PermissionDenied(RunError):
    """An agent tried something its place in the team does not allow."""

    details = ("action", "scope", "target", "reason")

    def __init__(self, *, agent: str, action: str, scope: str, target: str, reason: str) -> None:
        self.action = action
        self.scope = scope
        self.target = target
        self.reason = reason
        super().__init__(f"{agent!r} may not {action} {scope} {target!r}: {reason}", agent=agent)


class EffectInDoubt(RunError):
    """A crash left a call of a tool that is not idempotent started and unfinished, and
    the tool's ``on_in_doubt`` is ``fail``: corral will not run it again on its own."""

    details = ("tool", "key", "started_at")

    def __init__(self, *, agent: str, tool: str, key: str, started_at: float) -> None:
        self.tool = tool
        self.key = key
        self.started_at = started_at
        super().__init__(
            f"{agent!r} started a call of {tool!r} (key {key}) that never finished: its effect "
            "may or may not have happened, and the tool is not idempotent "
            "(on_in_doubt: fail), so corral will not run it again. Check whether the effect "
            "happened, then start a new run",
            agent=agent,
        )


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
            message=f"{used:g} of the {layer} budget of {limit:g} is used, and this call "
            f"of agent {agent!r} needs {requested:g} more",
        )

    def with_agent(self, agent: str) -> BudgetExceeded:
        return BudgetExceeded(
            agent=agent,
            layer=self.layer,
            limit=self.limit,
            used=self.used,
            requested=self.requested,
        )


class StepLimitExceeded(GuardTripped):
    """The run took more than ``guards.max_steps`` steps, across resumes; it may loop."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            "max_steps",
            limit=limit,
            seen=limit + 1,
            message=f"the run took more than guards.max_steps={limit} steps; the flow may "
            "loop: check its routing or raise max_steps",
        )


class DeadlinePassed(GuardTripped):
    """The run (started or resumed) has been running longer than
    ``guards.run_deadline_seconds``; what it was doing or waiting for is stopped."""

    def __init__(self, *, seconds: float, ran: float, agent: str | None, doing: str) -> None:
        super().__init__(
            "run_deadline_seconds",
            limit=seconds,
            seen=round(ran, 3),
            agent=agent,
            message=f"the run passed its deadline of {seconds:g} s while {doing}; raise "
            "guards.run_deadline_seconds or give the run less to do",
        )


class LoopDetected(GuardTripped):
    """The same tool call (tool and arguments) or the same delegation (report,
    instruction and payload) came more than ``guards.max_repeats`` times in one task."""

    details = (*GuardTripped.details, "repeated")

    def __init__(self, *, agent: str, repeated: str, limit: int, seen: int) -> None:
        self.repeated = repeated
        super().__init__(
            "max_repeats",
            limit=limit,
            seen=seen,
            agent=agent,
            message=f"{agent!r} repeated {repeated} {seen} times in one task (at most "
            f"{limit} allowed); it may be stuck in a loop",
        )

    def with_agent(self, agent: str) -> LoopDetected:
        return LoopDetected(
            agent=agent, repeated=self.repeated, limit=int(self.limit), seen=int(self.seen)
        )


class CooldownActive(GuardTripped):
    """Task creation is cooling down after the workspace's creation rate was reached."""

    def __init__(self, *, until: float, seconds_left: float, when: str) -> None:
        super().__init__(
            "cooldown",
            limit=0,
            seen=round(seconds_left, 1),
            until=until,
            message="the workspace is cooling down after the task creation rate was "
            f"reached; resume after {when} (in {seconds_left:.0f} s)",
        )


class ReviewPending(RunError):
    """The run waits for a person's decision on ``review`` (the run is paused)."""

    details = ("review",)

    def __init__(self, review: dict[str, Any]) -> None:
        self.review = review
        super().__init__(
            f"waiting for a person ({review.get('kind')}): {review.get('reason')}",
            agent=review.get("source"),
        )


class Rejected(RunError):
    """A person rejected the run's work; the run failed with their reason."""


class NoOutput(RunError):
    """The run ended without reaching END."""


class ScriptedProviderError(Exception):
    """An error a real provider would raise, injected by a script (``status_code`` set)."""

    def __init__(self, kind: str, status_code: int | None, retry_after: float | None = None):
        self.kind, self.status_code, self.retry_after = kind, status_code, retry_after
        super().__init__(
            f"scripted {kind} error" + (f" (HTTP {status_code})" if status_code else "")
        )


class ScriptedTimeoutError(ScriptedProviderError, TimeoutError):
    """A scripted request timeout."""


class ScriptedConnectionError(ScriptedProviderError, ConnectionError):
    """A scripted dropped connection."""


class CallTimeout(TimeoutError):
    """A call took longer than its timeout (retried like a provider's timeout)."""


class SDKRetriesWarning(UserWarning):
    """A chat model given in Python retries failed calls inside its SDK (``max_retries``
    above 0), where corral's retries, events and breaker never see them."""


def _kinds(cls: type[RunError]) -> dict[str, type[RunError]]:
    """``cls`` and every subclass below it, by name (what ``from_dict`` can rebuild)."""
    return {cls.__name__: cls} | {
        k: v for sub in cls.__subclasses__() for k, v in _kinds(sub).items()
    }


_KINDS = _kinds(RunError)
