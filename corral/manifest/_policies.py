"""Limits and policies in a team definition: budgets, permissions, rates, retries,
breakers, fallbacks and guards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from corral.manifest._types import Identifier, ImportPath
from corral.manifest._types import Spec as _Spec

BUILTIN_CAPABILITIES = ("can_deploy", "can_merge", "can_write_global")
"""The capabilities that are also flags of ``permissions`` (``can_deploy: true``)."""


class BudgetSpec(_Spec):
    """An agent's token budget in three layers: per call, per task and per day (UTC)."""

    max_input_tokens: int | None = Field(default=None, gt=0)
    """Most input tokens one call may send, counted with the model's
    token counter before the call; unset: no limit."""
    max_output_tokens: int | None = Field(default=None, gt=0)
    """Most tokens one answer may have, bound on the model as ``max_tokens``; unset: no limit."""
    trim_input: bool = False
    """If true, a prompt over ``max_input_tokens`` is trimmed
    to fit; if false, the call is refused."""
    max_task_tokens: int | None = Field(default=None, gt=0)
    """Most tokens (input and output) the agent may use on one task; unset: no limit."""
    max_task_calls: int | None = Field(default=None, gt=0)
    """Most model calls the agent may make on one task; unset: no limit."""
    daily_tokens: int | None = Field(default=None, gt=0)
    """Most tokens the agent may use per UTC day, across runs; unset: no limit."""
    daily_cost_usd: float | None = Field(default=None, gt=0)
    """Most the agent may spend per UTC day, in US dollars; unset: no limit."""
    alert_threshold: float = Field(default=0.8, gt=0, le=1)
    """Share of a daily limit (0-1] at which an alert is raised, once a day."""
    hard_stop: bool = True
    """If true, a call that would pass a daily limit is
    refused; if false, daily limits only alert."""

    def over(self, defaults: BudgetSpec | None) -> BudgetSpec:
        """This budget with unset fields taken from ``defaults``."""
        if defaults is None:
            return self
        mine = self.model_dump(exclude_unset=True)
        return BudgetSpec.model_validate(defaults.model_dump() | mine)


class TeamBudgetSpec(_Spec):
    """The team's daily budget, and defaults for every agent's budget."""

    daily_tokens: int | None = Field(default=None, gt=0)
    """Most tokens the whole team may use per UTC day; unset: no limit."""
    daily_cost_usd: float | None = Field(default=None, gt=0)
    """Most the whole team may spend per UTC day, in US dollars; unset: no limit."""
    alert_threshold: float = Field(default=0.8, gt=0, le=1)
    """Share of a team daily limit (0-1] at which an alert is raised, once a day."""
    hard_stop: bool = True
    """If true, a call that would pass a team daily limit is
    refused; if false, the limits only alert."""
    agent_defaults: BudgetSpec | None = None
    """Budget fields every agent gets unless its own ``budget`` sets them."""


class GrantSpec(_Spec):
    """What a report's subtask may spend of its supervisor's remaining task budget:
    a ``share`` of it (0-1] or a number of ``tokens``. Unset on a report: an equal share
    of what the round's explicit grants leave."""

    share: float | None = Field(default=None, gt=0, le=1)
    """Share (0-1] of the supervisor's remaining task tokens."""
    tokens: int | None = Field(default=None, gt=0)
    """Tokens, taken from the supervisor's remaining task tokens."""

    @model_validator(mode="after")
    def _one(self) -> GrantSpec:
        if (self.share is None) == (self.tokens is None):
            raise ValueError("a grant needs exactly one of `share` or `tokens`")
        return self


class PermissionsSpec(_Spec):
    """What an agent may do: the capabilities its tools may require, and review."""

    can: tuple[Identifier, ...] = ()
    """Capability names the agent holds (any names, such as ``can_refund``); a tool whose
    ``requires`` lists a name the agent lacks is refused."""

    can_deploy: bool = False
    """Grants ``can_deploy``, which tools may require."""
    can_merge: bool = False
    """Grants ``can_merge``, which tools may require."""
    can_write_global: bool = False
    """Grants ``can_write_global``: tools may require it, and the agent may write global context."""
    requires_review: bool = False
    """If true, every tool call of this agent waits for a person first."""

    @property
    def granted(self) -> frozenset[str]:
        """Every capability the agent holds: ``can`` and the flags set true."""
        flags = {f for f in BUILTIN_CAPABILITIES if getattr(self, f)}
        return frozenset(self.can) | flags


class RateSpec(_Spec):
    """At most ``count`` task creations per ``per_seconds`` sliding window."""

    count: int = Field(gt=0)
    """Most tasks created within the window."""
    per_seconds: float = Field(gt=0)
    """Length of the sliding window, in seconds."""


GuardName = Literal[
    "max_delegation_depth",
    "max_subtasks",
    "task_rate",
    "max_pending_tasks",
    "max_llm_calls_per_task",
    "budget",
    "run_deadline_seconds",
    "max_repeats",
]
Policy = Literal["halt", "escalate"]
DEFAULT_POLICY: dict[str, Policy] = {
    "max_delegation_depth": "escalate",
    "max_subtasks": "escalate",
    "task_rate": "halt",
    "max_pending_tasks": "halt",
    "max_llm_calls_per_task": "halt",
    "budget": "halt",
    "run_deadline_seconds": "halt",
    "max_repeats": "halt",
}


class RetrySpec(_Spec):
    """Retries of transient model errors (rate limits, timeouts, 5xx, dropped connections)
    with exponential backoff and jitter; a provider's ``Retry-After`` is honoured.

    The fields are those of LangGraph's ``RetryPolicy``; ``timeout`` bounds each call.
    """

    max_attempts: int = Field(default=3, ge=1, le=20)
    """Attempts in all, the first included (1: no retry)."""
    initial_interval: float = Field(default=0.5, ge=0, le=600)
    """Seconds to wait before the first retry."""
    backoff_factor: float = Field(default=2.0, ge=1, le=10)
    """Each wait is this many times the one before."""
    max_interval: float = Field(default=30.0, ge=0, le=3600)
    """Longest wait before a retry, in seconds (a ``Retry-After`` included)."""
    jitter: bool = True
    """If true, up to half of each wait is added at random."""
    timeout: float | None = Field(default=None, gt=0, le=3600)
    """Seconds one model call may take before it fails as a (retryable) timeout; unset: no limit."""


class BreakerSpec(_Spec):
    """An agent's circuit breaker: after ``failures`` consecutive failures within
    ``window_seconds`` (across runs), its calls skip to the fallback or escalation for
    ``cooldown_seconds``; then one probe call decides whether it closes again."""

    failures: int = Field(default=5, ge=1, le=1000)
    """Consecutive failures that open the breaker."""
    window_seconds: float = Field(default=300.0, gt=0)
    """Seconds from the first of those failures within which the rest must come."""
    cooldown_seconds: float = Field(default=60.0, gt=0)
    """Seconds the breaker stays open before a probe call is let through."""


class FallbackSpec(_Spec):
    """What an agent falls back on when it fails: another ``model``, or a ``function``
    that gives a simpler answer (flagged as degraded)."""

    model: str | None = None
    """Another model to answer with: a name under
    ``models:``, ``scripted`` or ``provider:model``."""
    function: ImportPath | SkipJsonSchema[Callable[..., Any]] | None = None
    """A ``module:callable`` (in Python, a callable) given the
    typed input and returning the output."""

    @model_validator(mode="after")
    def _one(self) -> FallbackSpec:
        if (self.model is None) == (self.function is None):
            raise ValueError("a fallback needs exactly one of `model` or `function`")
        return self


class AgentGuards(_Spec):
    """Per-agent overrides of the team's guards."""

    max_delegation_depth: int | None = Field(default=None, ge=1, le=50)
    """Overrides ``guards.max_delegation_depth`` for the subtasks this agent hands out."""
    max_subtasks: int | None = Field(default=None, ge=1, le=1000)
    """Overrides ``guards.max_subtasks`` for this agent's delegations."""
    max_llm_calls_per_task: int | None = Field(default=None, ge=1)
    """Overrides ``guards.max_llm_calls_per_task`` for this agent."""


class GuardSpec(_Spec):
    """Team-wide guard settings, all enforced. The task rate and pending tasks count
    across the whole workspace and every process sharing it."""

    max_validation_retries: int = Field(default=2, ge=0, le=10)
    """Times an agent is asked again after an answer that does not fit its output schema."""
    max_steps: int = Field(default=100, ge=1, le=100_000)
    """Most node executions per run (LangGraph's recursion limit); more halts the run."""
    max_tool_rounds: int = Field(default=5, ge=1, le=50)
    """Most rounds of tool calls in one agent step before it must answer."""
    max_delegation_depth: int = Field(default=3, ge=1, le=50)
    """Deepest delegation: a flow agent's subtasks are at depth 1, theirs at 2, and so on."""
    max_subtasks: int = Field(default=5, ge=1, le=1000)
    """Most subtasks one delegation may hand out."""
    task_rate: RateSpec | None = None
    """Most task creations per sliding window, workspace-wide; unset: no limit."""
    cooldown_seconds: float = Field(default=60.0, ge=0)
    """Seconds no task may be created after the task rate is reached."""
    max_pending_tasks: int = Field(default=100, ge=1)
    """Most pending or claimed tasks in the workspace at once."""
    max_llm_calls_per_task: int = Field(default=10, ge=1)
    """Most model calls an agent may make for one task (a flow step or a subtask)."""
    lease_seconds: float = Field(default=300.0, gt=0)
    """How long a claim on a subtask holds; an expired claim may
    be taken back (its claimer died or stalled)."""
    max_run_tokens: int | None = Field(default=None, gt=0)
    """Most tokens (input and output, every agent) one run may use; a model call that
    would pass it is refused before it is made. Unset: no limit."""
    max_run_cost_usd: float | None = Field(default=None, gt=0)
    """Most one run may spend, in US dollars (estimated before each call, settled after);
    unset: no limit."""
    run_deadline_seconds: float | None = Field(default=None, gt=0)
    """Most seconds a run may be running, counted from when it is started or resumed
    (time paused for a person is not running). Checked before each model call, and it
    cuts short a backoff pause or a wait on delegated subtasks. Unset: no deadline."""
    max_repeats: int | None = Field(default=None, ge=1, le=1000)
    """Most times one task may make the same tool call (tool and arguments) or the same
    delegation (report, instruction and payload); more trips ``max_repeats``. Unset: no
    limit."""
    on_trip: dict[GuardName, Policy] = Field(default_factory=dict)
    """Per guard, ``halt`` (end the run) or ``escalate`` (refuse, and tell the delegating agent).
    Unset: ``escalate`` for max_delegation_depth and max_subtasks, else ``halt``."""
    retry: RetrySpec = RetrySpec()
    """Retries of transient model errors, for agents without their own ``retry``."""
    breaker: BreakerSpec | None = None
    """A circuit breaker for each agent's calls; unset: none."""
    on_failure: Literal["fail", "review"] = "fail"
    """What a failed flow step does: ``fail`` ends the run, ``review`` hands it to a person."""

    def policy(self, guard: str) -> Policy:
        """What a trip of ``guard`` does: its ``on_trip`` entry or the default."""
        return self.on_trip.get(guard, DEFAULT_POLICY.get(guard, "halt"))  # type: ignore[call-overload, no-any-return]


class ReviewPolicy(_Spec):
    """A review with a deadline: a review nobody decides in ``timeout_seconds`` is
    decided by ``on_timeout`` when the run is next resumed (``corral resume``)."""

    timeout_seconds: float = Field(gt=0)
    """Seconds a person has to decide, counted from when the run paused for review."""
    on_timeout: Literal["reject", "approve", "escalate"] = "reject"
    """``reject`` ends the run as a person's reject would; ``approve`` lets the payload
    through; ``escalate`` keeps the review waiting, marked escalated (listed first by
    ``corral runs --pending``), with no deadline any more: only a person decides it."""
