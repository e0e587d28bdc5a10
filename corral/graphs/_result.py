"""What a run reports: ``RunResult``, live ``StepEvent``s, and the stream bookkeeping."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.errors import RunError
from corral.nodes import NO_USAGE, Usage
from corral.workspace import RunStatus, RunUsage


@dataclass(frozen=True)
class StepEvent:
    """One finished node, as reported to ``on_step`` while a run goes on."""

    run_id: str
    agent: str
    target: str
    schema: str
    usage: Usage
    seconds: float


OnStep = Callable[[StepEvent], None]


@dataclass(frozen=True)
class RunResult:
    """How a run ended. ``status`` is completed, failed, halted or paused. ``usage`` and
    ``cost_usd`` are the run's account in the ledger: every settled call of the run, in
    every attempt, whatever its status (``RunResult.of`` builds them from it)."""

    run_id: str
    status: RunStatus
    output: dict[str, Any] | None
    path: list[str]
    usage: Usage
    errors: list[RunError] = field(default_factory=list)
    """Why the run did not complete, the cause first (typed; ``to_dict`` for JSON)."""
    guards_tripped: list[dict[str, Any]] = field(default_factory=list)
    tasks_created: int = 0
    cost_usd: float | None = None

    @classmethod
    def of(cls, account: RunUsage, **fields: Any) -> RunResult:
        """A result whose usage and cost are ``account`` (the ledger's, of this run)."""
        usage = Usage(
            input_tokens=account["input_tokens"],
            output_tokens=account["output_tokens"],
            llm_calls=account["llm_calls"],
        )
        return cls(usage=usage, cost_usd=account["cost_usd"], **fields)

    @property
    def ok(self) -> bool:
        """True when the run completed."""
        return self.status == "completed"

    def raise_for_status(self) -> RunResult:
        """Return ``self`` if completed, else raise the run's first error (typed: a
        ``GuardTripped``, ``HandoffError``, ``ReviewPending``, ...)."""
        if not self.ok:
            raise self.errors[0] if self.errors else RunError(f"run {self.run_id} {self.status}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` object."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "output": self.output,
            "usage": {**self.usage, "cost_usd": self.cost_usd},
            "tasks_created": self.tasks_created,
            "guards_tripped": self.guards_tripped,
            "errors": [e.to_dict() for e in self.errors],
            "path": self.path,
        }


KEPT = ("_output", "_path", "_rejected")
"""The channels a run's result is made of (the rest of the state is not read back)."""


class Progress:
    """Keeps what a fresh run's result needs (path, output) so it need not be read back
    from the checkpoint, and turns LangGraph ``updates`` chunks into ``StepEvent``s.

    With no one to tell of steps it asks for ``values`` chunks (the state after each
    step), which LangGraph makes for less than ``updates`` (2% of a step), of the
    ``KEPT`` channels only."""

    def __init__(
        self,
        run_id: str,
        on_step: OnStep | None,
        *,
        fresh: bool,
        parallel: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.run_id = run_id
        self.on_step = on_step
        self.parallel = parallel or {}
        """Where a parallel step's agents hand on (their updates carry no handoff): a
        fanning agent to its branches, a branch to its join; and the schema."""
        self.mode = "values" if on_step is None else "updates"
        self.last = time.perf_counter()
        self.fresh = fresh
        self.interrupted = False
        self.handed_over = False
        """Cancelled to be handed over (``HANDOVER_KEY``): its record stays ``running``."""
        self.values: dict[str, Any] = {"_path": [], "_output": None}

    def keys(self, channels: Collection[str]) -> list[str] | None:
        """The channels to stream: in ``values`` chunks only those the result is made of
        (a chunk reads each of its channels at every step); ``updates`` chunks whole."""
        return [k for k in KEPT if k in channels] if self.on_step is None else None

    def __call__(self, chunk: dict[str, Any]) -> None:
        if self.on_step is None:  # a ``values`` chunk: the ``KEPT`` channels
            self.interrupted = self.interrupted or "__interrupt__" in chunk
            self.values = chunk
            return
        now = time.perf_counter()
        for agent, update in chunk.items():
            if agent == "__interrupt__":
                self.interrupted = True
            if not isinstance(update, dict):
                continue
            self.values["_path"].extend(update.get("_path", ()))
            for key in ("_output", "_rejected"):
                if update.get(key) is not None:
                    self.values[key] = update[key]
            if "_handoff" in update:
                target, schema = update["_handoff"]["target"], update["_handoff"]["schema"]
            elif agent in self.parallel and "_path" in update:
                target, schema = self.parallel[agent]
            else:
                continue
            usage = update.get("_usage") or NO_USAGE
            try:
                self.on_step(StepEvent(self.run_id, agent, target, schema, usage, now - self.last))
            except Exception as exc:  # the caller's code, not the run's: say so
                raise RunError(
                    f"the on_step callback raised {type(exc).__name__}: {exc} (after step "
                    f"{agent}); the run stopped there: fix the callback and resume it"
                ) from exc
        self.last = now
