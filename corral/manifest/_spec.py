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
    extra="forbid",
    frozen=True,
    validate_by_name=True,
    validate_by_alias=True,
    use_attribute_docstrings=True,  # field docstrings are the JSON Schema's descriptions
)


class _Spec(BaseModel):
    model_config = _SPEC_CONFIG


class FieldSpec(_Spec):
    """One field of an inline schema. ``type`` uses a small grammar, never ``eval``."""

    type: str = "str"
    """The value's type: ``str`` (default), ``int``, ``float``, ``bool``,
    ``list[T]``, ``dict[str, T]`` or another schema's name."""
    description: str | None = None
    """What the field holds; models see it in the payload's JSON schema."""
    required: bool = True
    """If false, the field may be null or left out (it then takes ``default``)."""
    default: JsonValue = None
    """The value when the field is left out, checked against
    its type and constraints (null: none)."""
    enum: tuple[Scalar, ...] | None = Field(default=None, min_length=1)
    """The only values allowed (they replace ``type``)."""
    min_length: int | None = Field(default=None, ge=0)
    """Least length of a text or list value."""
    max_length: int | None = Field(default=None, ge=0)
    """Greatest length of a text or list value."""
    ge: float | None = None
    """A number must be greater than or equal to this."""
    le: float | None = None
    """A number must be less than or equal to this."""
    gt: float | None = None
    """A number must be greater than this."""
    lt: float | None = None
    """A number must be less than this."""
    pattern: str | None = None
    """A regular expression that must match somewhere in a text value
    (anchor it with ``^...$`` to match all of it)."""

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
    """What the payload is; the docstring of an inline schema's class, which models see."""
    fields: dict[FieldName, FieldSpec] | None = None
    """Inline fields by name: a field spec, or just its type (``subject: str``)."""
    import_: ImportPath | None = Field(default=None, alias="import")
    """A pydantic model class as ``module:Class``; modules next to the manifest are found first."""
    model: SkipJsonSchema[type[BaseModel] | None] = Field(default=None, exclude=True)
    """(Python only) The pydantic model class itself."""

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
    """``scripted`` (built-in, deterministic; the default) or a
    ``provider:model`` string for LangChain's ``init_chat_model``."""
    script: str | None = None
    """For ``use: scripted``: a script file of replies, relative to the manifest."""
    params: dict[str, JsonValue] = Field(default_factory=dict)
    """Keyword arguments for the model (``init_chat_model``'s, such
    as ``temperature``, or the scripted model's)."""

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
    """A LangChain tool an agent may be given: an ``import`` path or (Python) a ``tool``."""

    import_: ImportPath | None = Field(default=None, alias="import")
    """The tool as ``module:attr``: a LangChain tool, or a function wrapped as one."""
    tool: SkipJsonSchema[Any] = Field(default=None, exclude=True)
    """(Python only) The tool or function itself."""
    description: str | None = None
    """What the tool does, told to the model when a plain function
    is wrapped (a LangChain tool keeps its own)."""
    requires: tuple[Capability, ...] = ()
    """Capability flags an agent's ``permissions`` must grant; otherwise the call is refused."""
    requires_review: bool = False
    """If true, every call of this tool waits for a person to approve, edit or reject it."""

    @model_validator(mode="after")
    def _one_source(self) -> ToolSpec:
        if (self.import_ is None) == (self.tool is None):
            raise ValueError("a tool needs exactly one of `import` ('module:attr') or `tool`")
        return self


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


class PermissionsSpec(_Spec):
    """What an agent may do: the capability flags its tools may require, and review."""

    can_deploy: bool = False
    """Grants ``can_deploy``, which tools may require."""
    can_merge: bool = False
    """Grants ``can_merge``, which tools may require."""
    can_write_global: bool = False
    """Grants ``can_write_global``: tools may require it, and the agent may write global context."""
    requires_review: bool = False
    """If true, every tool call of this agent waits for a person first."""


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


class AgentSpec(_Spec):
    """One node of the team: a model-driven ``agent`` or a plain Python ``function``."""

    id: Identifier
    """The agent's unique id, also its node name."""
    kind: Literal["agent", "function"] = "agent"
    """``agent`` (model-driven) or ``function`` (plain Python, no model)."""
    role: str = ""
    """Who the agent is, in its prompt (empty: its id) and in its supervisor's list of reports."""
    instructions: str = ""
    """What the agent is to do, in its system prompt."""
    constraints: tuple[str, ...] = ()
    """Rules the agent must follow, listed in its system prompt."""
    team: Identifier | None = None
    """The team the agent belongs to, for the ``team`` scope of shared context."""
    reports_to: Identifier | None = None
    """The agent's supervisor, which may delegate work to it; reports-to links form a tree."""
    model: str | None = None
    """A model under ``models:``, ``scripted`` or ``provider:model``;
    unset: the ``default`` model, else scripted."""
    tools: tuple[Identifier, ...] = ()
    """Names of the tools under ``tools:`` the agent may call."""
    input: SchemaName | None = None
    """Schema of the payload it receives; unset: the flow input (entry agent) or its
    inbound edges' schema. Agents reached only by delegation need one."""
    output: SchemaName | None = None
    """Schema of its answer; unset: the schema of its outgoing edges."""
    function: ImportPath | SkipJsonSchema[Callable[..., Any]] | None = None
    """For ``kind: function``: ``module:callable`` (in Python, a
    callable) given the typed input and returning the output."""
    max_validation_retries: int | None = Field(default=None, ge=0, le=10)
    """Overrides ``guards.max_validation_retries`` for this agent."""
    budget: BudgetSpec | None = None
    """The agent's budget, over the team's ``budget.agent_defaults``; unset: those defaults."""
    permissions: PermissionsSpec = PermissionsSpec()
    """Capabilities the agent holds, and whether its tool calls need review."""
    guards: AgentGuards = AgentGuards()
    """Overrides of the team's guards for this agent."""
    retry: RetrySpec | None = None
    """Retries of transient model errors; unset: ``guards.retry``."""
    fallback: FallbackSpec | None = None
    """What answers instead when the agent fails or its breaker is open (not for function nodes)."""
    on_failure: Literal["fail", "review"] | None = None
    """Overrides ``guards.on_failure`` for this agent."""
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    """An answer whose ``confidence_field`` is below this goes to review (a subtask's fails)."""
    confidence_field: str = "confidence"
    """The numeric field of the answer that ``min_confidence`` reads."""
    context: bool = False
    """If true, the agent gets the scoped-context tools and
    sees the context it may read in its prompt."""

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
    """The payload field to test."""
    equals: Scalar | None = None
    """Take the edge when the field equals this value."""
    in_: tuple[Scalar, ...] | None = Field(default=None, alias="in", min_length=1)
    """Take the edge when the field is one of these values."""

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
    """The agent whose answer the edge carries."""
    to: Identifier | Literal["END"]
    """The agent that receives it, or ``END`` to end the run with it as output."""
    schema_name: SchemaName = Field(alias="schema")
    """Schema of the payload; every edge leaving an agent carries the same one."""
    when: WhenSpec | None = None
    """Take the edge only if this holds; edges are tried in
    order, and one without ``when`` is the default."""
    review: bool = False
    """If true, a person approves, edits or rejects each payload before it goes on."""
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    """A payload whose ``confidence_field`` is below this goes to review first."""
    confidence_field: str = "confidence"
    """The numeric payload field that ``min_confidence`` reads."""


class FlowSpec(_Spec):
    """Where a run starts, what it takes, what it returns, and the edges between."""

    entry: Identifier
    """The agent a run starts at."""
    input: SchemaName
    """Schema of a run's input."""
    output: SchemaName
    """Schema of a run's output, carried by the edges to ``END``."""
    edges: tuple[EdgeSpec, ...] = Field(min_length=1)
    """The typed handoffs between agents, at least one to ``END``."""


class ContextSpec(_Spec):
    """Scoped context: how long private notes live, and how much of each scope a prompt
    shows (the rest is said to be there, not shown)."""

    note_ttl_seconds: float = Field(default=86_400.0, gt=0)
    """Seconds an agent's private notes live (default: a day)."""
    prompt_chars: int = Field(default=2_000, ge=0, le=100_000)
    """Characters of each context scope a prompt shows; the rest is said to be there."""


class CheckpointSpec(_Spec):
    """Where runs are checkpointed and how durably."""

    db: str | None = None
    """The workspace SQLite file, relative to the manifest; unset:
    ``.corral/corral.db``. ``compile(db=...)`` overrides it."""
    durability: Literal["sync", "async", "exit"] = "sync"
    """When checkpoints are written: ``sync`` before the next step,
    ``async`` while it runs, ``exit`` only when the run stops."""
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """SQLite ``synchronous``: ``NORMAL`` (WAL) survives a crashed
    process, ``FULL`` also power loss, at an fsync per commit."""
    keep: int | None = Field(default=None, ge=1)
    """Checkpoints each run keeps, newest first; unset keeps the full history."""
