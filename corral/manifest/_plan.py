"""The compiled plan: every effective per-agent setting, resolved once from a team spec.

The runtime (nodes, guards, context, the App) reads only the plan; nothing below the
compile step resolves a default again. Plans are frozen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, JsonValue

from corral.manifest._policies import BreakerSpec, GuardSpec, Policy, RetrySpec
from corral.manifest._spec import AgentSpec, CheckpointSpec, ContextSpec, EdgeSpec, TraceSpec
from corral.models import Price, Script
from corral.workspace import BudgetLimits, Limits

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool


@dataclass(frozen=True, slots=True)
class Who:
    """An agent as the context rules see it: its team, what it may write, whom it manages."""

    agent: str
    team: str | None
    supervisor: bool = False
    can_write_global: bool = False
    managed_teams: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """A chat model to build: ``scripted`` or ``provider:model``, its params and script."""

    name: str
    use: str
    params: Mapping[str, JsonValue]
    script: Script | None = None
    loc: tuple[str | int, ...] = ()
    """Where the team declares it (``models.NAME.use``, or the agent naming it inline)."""
    price: Price | None = None
    """The price the team declares for it (over ``genai-prices``)."""


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """A tool an agent holds, with what calling it requires."""

    name: str
    tool: BaseTool
    requires: tuple[str, ...] = ()
    requires_review: bool = False
    idempotent: bool = False
    on_in_doubt: str = "review"


@dataclass(frozen=True, slots=True)
class ReportPlan:
    """A direct report as its supervisor sees it."""

    id: str
    role: str
    input_name: str
    input_schema: type[BaseModel]
    grant_share: float | None = None
    """Share of the supervisor's remaining task tokens its subtasks get (or ``grant_tokens``;
    neither: an equal share of what explicit grants leave)."""
    grant_tokens: int | None = None
    by_delegation: bool = True
    """True when only delegation gives it work (no flow edge, branch or entry leads to
    it); the supervisor's ``delegate`` tool offers only such reports."""


@dataclass(frozen=True, slots=True)
class AgentPlan:
    """Everything one agent needs at run time, with every default already applied."""

    id: str
    spec: AgentSpec
    team: str
    in_name: str
    in_schema: type[BaseModel]
    out_name: str
    out_schema: type[BaseModel]
    edges: tuple[EdgeSpec, ...]
    """Where its output may go (none for a worker that only answers its manager)."""
    in_flow: bool
    reports: tuple[ReportPlan, ...]
    model_key: str | None
    """The name the agent asks for (its ``model`` or ``default``); ``None`` for functions."""
    model: str | None
    """The model it gets (``model_key``, or ``scripted`` when no default is declared)."""
    fallback_model_key: str | None
    fallback_model: str | None
    function: Callable[..., Any] | None
    graph: Any
    """For a ``kind: graph`` node: the compiled LangGraph graph it runs."""
    fallback_function: Callable[..., Any] | None
    tools: tuple[ToolPlan, ...]
    identity: Who | None
    """Set when the agent uses scoped context."""
    budget: BudgetLimits
    budgeted: bool
    """True when the agent (or the team's defaults) declared a budget."""
    retries: int
    tool_rounds: int
    max_calls: int
    retry: RetrySpec
    breaker: BreakerSpec | None
    max_depth: int
    max_subtasks: int
    on_failure: Literal["fail", "review"]
    reviewed: bool
    """True when the agent's output may wait for a person."""
    policies: Mapping[str, Policy] = field(default_factory=dict)
    fans_out: tuple[str, ...] = ()
    """Branch agents the answer goes to at once (a parallel step)."""
    joins: str | None = None
    """For a branch of a parallel step: the join agent its answer goes to."""
    gathers: tuple[str, ...] = ()
    """For a join agent: the branches whose answers it gets together."""
    max_repeats: int | None = None
    """Most identical tool calls or delegations in one task (``None``: no limit)."""

    @property
    def supervisor(self) -> bool:
        """True when the agent has direct reports."""
        return bool(self.reports)

    @property
    def delegates_to(self) -> tuple[ReportPlan, ...]:
        """The reports it may hand work to with ``delegate``: those the flow does not feed."""
        return tuple(r for r in self.reports if r.by_delegation)

    def policy(self, guard: str) -> Policy:
        """What a trip of ``guard`` does for this agent: ``halt`` or ``escalate``."""
        return self.policies.get(guard, "halt")

    @property
    def marks(self) -> tuple[str, ...]:
        """Short marks for drawings: supervisor, function, budget, fallback, review, tools."""
        found = []
        if self.supervisor:
            found.append("supervisor")
        if self.spec.kind in ("function", "graph"):
            found.append(self.spec.kind)
        if self.budgeted:
            found.append("budget")
        if self.spec.fallback is not None:
            found.append("fallback")
        if self.spec.min_confidence is not None or self.spec.on_failure == "review":
            found.append("review")
        if self.spec.tools:
            found.append(f"tools: {', '.join(self.spec.tools)}")
        return tuple(found)


@dataclass(frozen=True, slots=True)
class TeamPlan:
    """A whole team, compiled: agents, models, schemas, flow, guards and settings."""

    name: str
    source: Path | None
    entry: str
    input_name: str
    output_name: str
    edges: tuple[EdgeSpec, ...]
    schemas: Mapping[str, type[BaseModel]]
    agents: Mapping[str, AgentPlan]
    models: Mapping[str, ModelPlan]
    guards: GuardSpec
    limits: Limits
    """The workspace-wide limits checked when tasks are created."""
    team_budget: BudgetLimits | None
    context: ContextSpec
    checkpoint: CheckpointSpec
    trace: TraceSpec
    fingerprint: str
    """A hash of the team definition (what a run was started with)."""
    definition: Mapping[str, Any]
    """The team definition as JSON (Python objects in it by their names): what a run
    records, so a resume under a changed team file can say what changed."""

    @property
    def flow_agents(self) -> tuple[str, ...]:
        """Agents that are nodes of the flow graph (the others run inside delegations)."""
        return tuple(a.id for a in self.agents.values() if a.in_flow)

    @property
    def reviews(self) -> bool:
        """True when any flow step may wait for a person."""
        return any(a.reviewed for a in self.agents.values() if a.in_flow)

    def agent(self, agent_id: str) -> AgentPlan:
        """The plan of one agent (``KeyError`` if there is none)."""
        return self.agents[agent_id]
