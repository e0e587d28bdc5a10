"""The team definition as frozen pydantic value objects: payload schemas, models, tools,
agents, edges and settings (limits and policies are in ``_policies``).

The same classes validate a YAML manifest and a team built in Python. Structure is
checked here (types, unknown keys, ranges); cross-references are checked by
``_checks`` and resolution (imports, schemas) by ``_resolve``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from corral.manifest._policies import (
    AgentGuards,
    BudgetSpec,
    FallbackSpec,
    GrantSpec,
    PermissionsSpec,
    RetrySpec,
    ReviewPolicy,
)
from corral.manifest._types import (
    FieldName,
    Identifier,
    ImportPath,
    Scalar,
    SchemaName,
)
from corral.manifest._types import Spec as _Spec


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
                "a schema needs exactly one of `fields` (inline), `import` (a 'module:Class' "
                f"path) or, in Python, `model` (the class); got {', '.join(given) or 'none'}"
            )
        return self


class PriceSpec(_Spec):
    """A model's price in US dollars per million tokens; it overrides ``genai-prices``."""

    input_per_mtok: float = Field(ge=0)
    """USD per million input tokens."""
    output_per_mtok: float = Field(ge=0)
    """USD per million output tokens."""
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    """USD per million input tokens read from the provider's cache; unset: as input."""


class ModelSpec(_Spec):
    """A chat model: ``scripted`` (deterministic, built in) or a ``provider:model`` string."""

    use: str = Field(default="scripted", min_length=1)
    """``scripted`` (built-in, deterministic; the default) or a
    ``provider:model`` string for LangChain's ``init_chat_model``."""
    script: str | None = None
    """For ``use: scripted``: a script file of replies, relative to the manifest."""
    params: dict[str, JsonValue] = Field(default_factory=dict)
    """Keyword arguments for the model (``init_chat_model``'s, such
    as ``temperature``, or the scripted model's). A string value ``${NAME}`` is the
    environment variable ``NAME``, read when the model is built and never stored."""
    price: PriceSpec | Literal["unknown_ok"] | None = None
    """The model's price (USD per million tokens), over ``genai-prices``' data; or
    ``unknown_ok`` to allow cost budgets on a model with no known price (its cost is
    then recorded as unknown and never counts against them). Unset: ``genai-prices``."""

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


class ToolSpec(_Spec):
    """A LangChain tool an agent may be given: an ``import`` path or (Python) a ``tool``."""

    import_: ImportPath | None = Field(default=None, alias="import")
    """The tool as ``module:attr``: a LangChain tool, or a function wrapped as one."""
    tool: SkipJsonSchema[Any] = Field(default=None, exclude=True)
    """(Python only) The tool or function itself."""
    description: str | None = None
    """What the tool does, told to the model when a plain function
    is wrapped (a LangChain tool keeps its own)."""
    requires: tuple[Identifier, ...] = ()
    """Capability names an agent's ``permissions`` must grant (in ``can:``, or a flag such
    as ``can_deploy: true``); otherwise the call is refused."""
    requires_review: bool = False
    """If true, every call of this tool waits for a person to approve, edit or reject it."""
    idempotent: bool = False
    """If true, running a call twice has the effect of running it once (the tool dedupes on
    the ``corral_idempotency_key`` in its config), so a call left in doubt by a crash is
    simply run again with the same key."""
    on_in_doubt: Literal["review", "fail"] = "review"
    """What happens to a call of a tool that is not idempotent when a crash left it started
    and unfinished: ``review`` (a person decides whether to run it again) or ``fail`` (the
    run fails). Such a call is never run again on its own."""

    @model_validator(mode="after")
    def _one_source(self) -> ToolSpec:
        if (self.import_ is None) == (self.tool is None):
            raise ValueError("a tool needs exactly one of `import` ('module:attr') or `tool`")
        if self.idempotent and "on_in_doubt" in self.model_fields_set:
            raise ValueError(
                "`on_in_doubt` is for tools that are not idempotent; an idempotent tool's "
                "call is simply run again with the same key: drop one of the two"
            )
        return self


class AgentSpec(_Spec):
    """One node of the team: a model-driven ``agent``, a plain Python ``function``, or a
    compiled LangGraph ``graph``."""

    id: Identifier
    """The agent's unique id, also its node name."""
    kind: Literal["agent", "function", "graph"] = "agent"
    """``agent`` (model-driven), ``function`` (plain Python, no model) or ``graph`` (a
    compiled LangGraph graph run on the typed input)."""
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
    graph: ImportPath | SkipJsonSchema[Any] = None
    """For ``kind: graph``: a compiled LangGraph graph as ``module:attr`` (in Python, the
    graph itself). It gets the inbound payload as its input; the fields of its result
    that the output schema names are the answer, validated like any other."""
    max_validation_retries: int | None = Field(default=None, ge=0, le=10)
    """Overrides ``guards.max_validation_retries`` for this agent."""
    budget: BudgetSpec | None = None
    """The agent's budget, over the team's ``budget.agent_defaults``; unset: those defaults."""
    grant: GrantSpec | None = None
    """For a report: what its subtasks may spend of the supervisor's remaining task
    budget; unset: an equal share of what the round's explicit grants leave."""
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

    @field_validator("function", mode="before")
    @classmethod
    def _not_a_graph(cls, value: Any) -> Any:
        if hasattr(value, "get_graph") and hasattr(value, "invoke"):
            raise ValueError(
                "this is a compiled LangGraph graph: give it as `graph:` with `kind: graph`"
            )
        return value

    @model_validator(mode="after")
    def _kind_fits(self) -> AgentSpec:
        if self.kind == "graph":
            if self.graph is None:
                raise ValueError("a `kind: graph` node needs `graph: 'module:compiled_graph'`")
            if self.function is not None or self.model is not None or self.tools:
                raise ValueError("a graph node has no `function`, `model` or `tools`")
            return self
        if self.graph is not None:
            raise ValueError("`graph` is only for `kind: graph` nodes")
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
    review: bool | ReviewPolicy = False
    """If true, a person approves, edits or rejects each payload before it goes on; a
    ``{timeout_seconds, on_timeout}`` policy also gives each review a deadline."""
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    """A payload whose ``confidence_field`` is below this goes to review first."""
    confidence_field: str = "confidence"
    """The numeric payload field that ``min_confidence`` reads."""

    @property
    def label(self) -> str:
        """How the edge is labelled in drawings: its schema and its condition."""
        if self.when is None:
            return self.schema_name
        when = self.when
        test = f"= {when.equals}" if when.in_ is None else f"in {', '.join(map(str, when.in_))}"
        return f"{self.schema_name} [{when.field} {test}]"


class ParallelSpec(_Spec):
    """A parallel step: one agent's answer goes to several agents at once, and a join
    agent gets all their answers together, each under the branch agent's id."""

    from_: Identifier = Field(alias="from")
    """The agent whose answer fans out (it has no other outgoing edge)."""
    to: tuple[Identifier, ...] = Field(min_length=2)
    """The branch agents; each gets the payload and answers with its declared `output`."""
    schema_name: SchemaName = Field(alias="schema")
    """Schema of the payload every branch receives (the fanning agent's output)."""
    join: Identifier
    """The agent that gets the answers together: its `input` schema has one field per
    branch, named by the branch's id and typed by that branch's `output`."""


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
    parallel: tuple[ParallelSpec, ...] = ()
    """Parallel steps: fan out to several agents, then join their typed answers."""


class ContextSpec(_Spec):
    """Scoped context: how long private notes live, and how much of each scope a prompt
    shows (the rest is said to be there, not shown)."""

    note_ttl_seconds: float = Field(default=86_400.0, gt=0)
    """Seconds an agent's private notes live (default: a day)."""
    prompt_chars: int = Field(default=2_000, ge=0, le=100_000)
    """Characters of each context scope a prompt shows; the rest is said to be there."""


class TraceSpec(_Spec):
    """What a run's trace keeps of each model call's prompt and answer."""

    content: Literal["full", "redacted", "none"] = "redacted"
    """``full``: the messages and the answer; ``redacted`` (the default): only their sizes
    and SHA-256 hashes; ``none``: nothing."""


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
