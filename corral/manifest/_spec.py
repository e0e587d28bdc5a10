"""The team definition as frozen pydantic value objects.

The same classes validate a YAML manifest and a team built in Python. Structure is
checked here (types, unknown keys, ranges); cross-references are checked by
``_checks`` and resolution (imports, schemas) by ``_resolve``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
SchemaName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9_]{0,62}$")]
ImportPath = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$", max_length=300)
]
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]\w{0,62}$")]
Scalar = str | int | float | bool
END = "END"
"""The destination of a terminal edge: the run ends with that edge's payload as output."""

_SPEC_CONFIG = ConfigDict(
    extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True
)


class _Spec(BaseModel):
    model_config = _SPEC_CONFIG


class FieldSpec(_Spec):
    """One field of an inline schema. ``type`` uses a small grammar, never ``eval``.

    Types: ``str``, ``int``, ``float``, ``bool``, ``list[T]``, ``dict[str, T]`` or the
    name of another schema. ``enum`` restricts the value to the listed choices.
    """

    type: str = "str"
    description: str | None = None
    required: bool = True
    default: JsonValue = None
    enum: tuple[Scalar, ...] | None = Field(default=None, min_length=1)
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression ({exc})") from exc
        return value


class SchemaSpec(_Spec):
    """A payload schema: inline ``fields``, an ``import`` path, or (Python) a ``model``."""

    description: str | None = None
    fields: dict[FieldName, FieldSpec] | None = None
    import_: ImportPath | None = Field(default=None, alias="import")
    model: SkipJsonSchema[type[BaseModel] | None] = Field(default=None, exclude=True)

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `subject: str` is short for `subject: {type: str}`.
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SchemaSpec:
        given = [
            n
            for n, v in (("fields", self.fields), ("import", self.import_), ("model", self.model))
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a schema needs exactly one of `fields` (inline) or `import` "
                f"(a 'module:Class' path); got {', '.join(given) or 'neither'}"
            )
        return self


class ModelSpec(_Spec):
    """A chat model: ``scripted`` (deterministic, built in) or a ``provider:model`` string."""

    use: str = Field(default="scripted", min_length=1)
    script: str | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _script_only_for_scripted(self) -> ModelSpec:
        if self.script is not None and self.use != "scripted":
            raise ValueError("`script` applies only to `use: scripted`")
        if self.use != "scripted" and ":" not in self.use:
            raise ValueError(
                f"model {self.use!r} is neither 'scripted' nor a 'provider:model' string "
                "such as 'openai:gpt-4o-mini'"
            )
        return self


Capability = Literal["can_deploy", "can_merge", "can_write_global"]


class ToolSpec(_Spec):
    """A LangChain tool an agent may be given: an ``import`` path or (Python) a ``tool``.

    ``requires`` lists capability flags an agent must hold to call it;
    ``requires_review`` sends every call to a person first.
    """

    import_: ImportPath | None = Field(default=None, alias="import")
    tool: SkipJsonSchema[Any] = Field(default=None, exclude=True)
    description: str | None = None
    requires: tuple[Capability, ...] = ()
    requires_review: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ToolSpec:
        if (self.import_ is None) == (self.tool is None):
            raise ValueError("a tool needs exactly one of `import` ('module:attr') or `tool`")
        return self


class BudgetSpec(_Spec):
    """An agent's token budget in three layers.

    Per call: ``max_input_tokens`` (checked with the model's token counter before the
    call; the prompt is trimmed if ``trim_input``, else the call is refused) and
    ``max_output_tokens`` (bound on the model). Per task: ``max_task_tokens`` and
    ``max_task_calls``. Per day (UTC): ``daily_tokens`` and ``daily_cost_usd``, with an
    alert at ``alert_threshold`` and, if ``hard_stop``, a stop at the limit.
    """

    max_input_tokens: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    trim_input: bool = False
    max_task_tokens: int | None = Field(default=None, gt=0)
    max_task_calls: int | None = Field(default=None, gt=0)
    daily_tokens: int | None = Field(default=None, gt=0)
    daily_cost_usd: float | None = Field(default=None, gt=0)
    alert_threshold: float = Field(default=0.8, gt=0, le=1)
    hard_stop: bool = True

    def over(self, defaults: BudgetSpec | None) -> BudgetSpec:
        """This budget with unset fields taken from ``defaults``."""
        if defaults is None:
            return self
        mine = self.model_dump(exclude_unset=True)
        return BudgetSpec.model_validate(defaults.model_dump() | mine)


class TeamBudgetSpec(_Spec):
    """The team's daily budget, and defaults for every agent's budget."""

    daily_tokens: int | None = Field(default=None, gt=0)
    daily_cost_usd: float | None = Field(default=None, gt=0)
    alert_threshold: float = Field(default=0.8, gt=0, le=1)
    hard_stop: bool = True
    agent_defaults: BudgetSpec | None = None


class PermissionsSpec(_Spec):
    """What an agent may do: capability flags its tools may require, and
    ``requires_review`` (every tool call of the agent goes to a person first)."""

    can_deploy: bool = False
    can_merge: bool = False
    can_write_global: bool = False
    requires_review: bool = False


class RateSpec(_Spec):
    """At most ``count`` task creations per ``per_seconds`` sliding window."""

    count: int = Field(gt=0)
    per_seconds: float = Field(gt=0)


GuardName = Literal[
    "max_delegation_depth",
    "max_subtasks",
    "task_rate",
    "max_pending_tasks",
    "max_llm_calls_per_task",
    "budget",
]
Policy = Literal["halt", "escalate"]
DEFAULT_POLICY: dict[str, Policy] = {
    "max_delegation_depth": "escalate",
    "max_subtasks": "escalate",
    "task_rate": "halt",
    "max_pending_tasks": "halt",
    "max_llm_calls_per_task": "halt",
    "budget": "halt",
}


class RetrySpec(_Spec):
    """Retries of transient model errors (rate limits, timeouts, 5xx, dropped connections)
    with exponential backoff and jitter; a provider's ``Retry-After`` is honoured.

    The fields are those of LangGraph's ``RetryPolicy``; ``timeout`` bounds each call.
    """

    max_attempts: int = Field(default=3, ge=1, le=20)
    initial_interval: float = Field(default=0.5, ge=0, le=600)
    backoff_factor: float = Field(default=2.0, ge=1, le=10)
    max_interval: float = Field(default=30.0, ge=0, le=3600)
    jitter: bool = True
    timeout: float | None = Field(default=None, gt=0, le=3600)


class BreakerSpec(_Spec):
    """An agent's circuit breaker: after ``failures`` consecutive failures within
    ``window_seconds`` (across runs), its calls skip to the fallback or escalation for
    ``cooldown_seconds``; then one probe call decides whether it closes again."""

    failures: int = Field(default=5, ge=1, le=1000)
    window_seconds: float = Field(default=300.0, gt=0)
    cooldown_seconds: float = Field(default=60.0, gt=0)


class FallbackSpec(_Spec):
    """What an agent falls back on when it fails: another ``model``, or a ``function``
    that gives a simpler answer (flagged as degraded)."""

    model: str | None = None
    function: ImportPath | SkipJsonSchema[Callable[..., Any]] | None = None

    @model_validator(mode="after")
    def _one(self) -> FallbackSpec:
        if (self.model is None) == (self.function is None):
            raise ValueError("a fallback needs exactly one of `model` or `function`")
        return self


class AgentGuards(_Spec):
    """Per-agent overrides of the team's guards."""

    max_delegation_depth: int | None = Field(default=None, ge=1, le=50)
    max_subtasks: int | None = Field(default=None, ge=1, le=1000)
    max_llm_calls_per_task: int | None = Field(default=None, ge=1)


class GuardSpec(_Spec):
    """Team-wide guard settings, all enforced.

    ``max_validation_retries``, ``max_steps`` (node executions per run) and
    ``max_tool_rounds`` bound one agent step. Delegation is bounded by depth, subtasks
    per delegation, model calls per task, and, across the whole workspace and every
    process sharing it, by the task creation rate (with a cooldown) and the number of
    pending tasks. ``on_trip`` says, per guard, whether a trip ends the run (``halt``)
    or is fed back to the delegating agent as a refusal (``escalate``).
    """

    max_validation_retries: int = Field(default=2, ge=0, le=10)
    max_steps: int = Field(default=100, ge=1, le=100_000)
    max_tool_rounds: int = Field(default=5, ge=1, le=50)
    max_delegation_depth: int = Field(default=3, ge=1, le=50)
    max_subtasks: int = Field(default=5, ge=1, le=1000)
    task_rate: RateSpec | None = None
    cooldown_seconds: float = Field(default=60.0, ge=0)
    max_pending_tasks: int = Field(default=100, ge=1)
    max_llm_calls_per_task: int = Field(default=10, ge=1)
    lease_seconds: float = Field(default=300.0, gt=0)
    on_trip: dict[GuardName, Policy] = Field(default_factory=dict)
    retry: RetrySpec = RetrySpec()
    breaker: BreakerSpec | None = None
    on_failure: Literal["fail", "review"] = "fail"

    def policy(self, guard: str) -> Policy:
        """What a trip of ``guard`` does: its ``on_trip`` entry or the default."""
        return self.on_trip.get(guard, DEFAULT_POLICY.get(guard, "halt"))  # type: ignore[call-overload, no-any-return]


class AgentSpec(_Spec):
    """One node of the team: a model-driven ``agent`` or a plain Python ``function``."""

    id: Identifier
    kind: Literal["agent", "function"] = "agent"
    role: str = ""
    instructions: str = ""
    constraints: tuple[str, ...] = ()
    team: Identifier | None = None
    reports_to: Identifier | None = None
    model: str | None = None
    tools: tuple[Identifier, ...] = ()
    input: SchemaName | None = None
    output: SchemaName | None = None
    function: ImportPath | SkipJsonSchema[Callable[..., Any]] | None = None
    max_validation_retries: int | None = Field(default=None, ge=0, le=10)
    budget: BudgetSpec | None = None
    permissions: PermissionsSpec = PermissionsSpec()
    guards: AgentGuards = AgentGuards()
    retry: RetrySpec | None = None
    fallback: FallbackSpec | None = None
    on_failure: Literal["fail", "review"] | None = None
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    confidence_field: str = "confidence"
    context: bool = False

    @model_validator(mode="after")
    def _kind_fits(self) -> AgentSpec:
        if self.kind == "function" and self.function is None:
            raise ValueError("a `kind: function` node needs `function: 'module:callable'`")
        if self.kind == "agent" and self.function is not None:
            raise ValueError("`function` is only for `kind: function` nodes")
        if self.kind == "function" and (self.model is not None or self.tools):
            raise ValueError("a function node calls no model: remove `model` and `tools`")
        return self


class WhenSpec(_Spec):
    """Route on the value of one field of the validated payload: ``equals`` or ``in``."""

    field: str = Field(min_length=1)
    equals: Scalar | None = None
    in_: tuple[Scalar, ...] | None = Field(default=None, alias="in", min_length=1)

    @model_validator(mode="after")
    def _one_test(self) -> WhenSpec:
        if (self.equals is None) == (self.in_ is None):
            raise ValueError("a `when` needs exactly one of `equals` or `in`")
        return self

    @property
    def values(self) -> tuple[Scalar, ...]:
        """The values that send a payload along this edge."""
        return self.in_ if self.in_ is not None else (self.equals,)  # type: ignore[return-value]


class EdgeSpec(_Spec):
    """A typed handoff from one agent to another (or to ``END``)."""

    from_: Identifier = Field(alias="from")
    to: Identifier | Literal["END"]
    schema_name: SchemaName = Field(alias="schema")
    when: WhenSpec | None = None
    review: bool = False
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    confidence_field: str = "confidence"


class FlowSpec(_Spec):
    """Where a run starts, what it takes, what it returns, and the edges between."""

    entry: Identifier
    input: SchemaName
    output: SchemaName
    edges: tuple[EdgeSpec, ...] = Field(min_length=1)


class ContextSpec(_Spec):
    """Scoped context: how long private notes live, and how much of each scope a prompt
    shows (the rest is said to be there, not shown)."""

    note_ttl_seconds: float = Field(default=86_400.0, gt=0)
    prompt_chars: int = Field(default=2_000, ge=0, le=100_000)


class CheckpointSpec(_Spec):
    """Where runs are checkpointed and how durably.

    ``synchronous: NORMAL`` (WAL) survives a crashed or killed process; ``FULL`` also
    survives power loss, at the cost of an fsync per commit. ``keep`` bounds the
    checkpoints each run keeps (newest first); unset keeps the full history.
    """

    db: str | None = None
    durability: Literal["sync", "async", "exit"] = "sync"
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    keep: int | None = Field(default=None, ge=1)
