"""``TeamSpec``: the whole team definition, validated at construction, planned on demand."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator
from pydantic.json_schema import SkipJsonSchema

from corral.errors import ManifestError
from corral.manifest._spec import (
    AgentSpec,
    BudgetSpec,
    CheckpointSpec,
    ContextSpec,
    FlowSpec,
    GuardSpec,
    Identifier,
    ModelSpec,
    SchemaName,
    SchemaSpec,
    TeamBudgetSpec,
    ToolSpec,
    _Spec,
)
from corral.manifest._yaml import pydantic_problem

if TYPE_CHECKING:
    from corral.manifest._plan import TeamPlan
    from corral.manifest._resolve import Resolved


class TeamSpec(_Spec):
    """A team of agents as a frozen spec. ``plan`` is its compiled form (the runtime's input).

    Built from YAML by ``load_team(path)`` or directly in Python; both give an equal
    object. Construction checks the whole team and raises ``ManifestError`` listing
    every problem found.
    """

    version: Literal[1] = 1
    """Version of the team-file format; only 1."""
    name: Identifier
    """The team's name; it names the graph and the team's shared context."""
    description: str = ""
    """What the team is for."""
    models: dict[Identifier, ModelSpec | str] = Field(default_factory=dict)
    """Chat models by name (a spec or a ``use`` string); ``default`` serves agents naming none."""
    schemas: dict[SchemaName, SchemaSpec] = Field(min_length=1)
    """Payload schemas by name, used by agents and edges."""
    tools: dict[Identifier, ToolSpec] = Field(default_factory=dict)
    """Tools agents may be given, by name."""
    agents: tuple[AgentSpec, ...] = Field(min_length=1)
    """The agents: the team's nodes."""
    flow: FlowSpec
    """Where a run starts, what it takes and returns, and the edges between agents."""
    guards: GuardSpec = GuardSpec()
    """Team-wide limits and failure handling."""
    budget: TeamBudgetSpec | None = None
    """The team's daily budget and its agents' default budgets; unset: none."""
    context: ContextSpec = ContextSpec()
    """Settings of scoped shared context."""
    checkpoint: CheckpointSpec = CheckpointSpec()
    """Checkpoint settings: the workspace file, durability, and how much history runs keep."""
    source: SkipJsonSchema[Path | None] = Field(default=None, exclude=True)

    _resolved: Resolved | None = PrivateAttr(default=None)
    _plan: TeamPlan | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # one error hierarchy for YAML and Python alike
            from corral.manifest._salvage import salvage_problems

            problems = [pydantic_problem(e, type(self), data) for e in exc.errors()]
            raise ManifestError(problems + salvage_problems(type(self), data, problems)) from None

    @model_validator(mode="after")
    def _check_whole_team(self) -> TeamSpec:
        from corral.manifest._checks import check_team
        from corral.manifest._resolve import resolve

        problems = check_team(self)
        if not problems:
            resolved, problems = resolve(self)
            self._resolved = resolved
        if problems:
            raise ManifestError(problems)
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TeamSpec):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @property
    def resolved(self) -> Resolved:
        """Schemas as pydantic classes, functions, tools and models, resolved once."""
        assert self._resolved is not None  # set by the validator or it raised
        return self._resolved

    def agent(self, agent_id: str) -> AgentSpec:
        """The agent with this id (``KeyError`` if there is none)."""
        for spec in self.agents:
            if spec.id == agent_id:
                return spec
        raise KeyError(agent_id)

    def model_spec(self, agent: AgentSpec) -> ModelSpec:
        """The model an agent uses: its own, else the team's ``default``, else scripted."""
        name = agent.model or "default"
        found: ModelSpec | str | None = self.models.get(name)
        if found is None:
            found = agent.model or "scripted"
        return ModelSpec(use=found) if isinstance(found, str) else found

    def budget_of(self, agent: AgentSpec) -> BudgetSpec | None:
        """An agent's effective budget: its own over the team's ``agent_defaults``."""
        defaults = self.budget.agent_defaults if self.budget is not None else None
        if agent.budget is None:
            return defaults
        return agent.budget.over(defaults)

    @property
    def plan(self) -> TeamPlan:
        """The compiled plan: every effective per-agent setting, resolved once."""
        if self._plan is None:
            from corral.manifest._compile import compile_plan

            self._plan = compile_plan(self)
        return self._plan
