"""``TeamFields``: what a team definition holds, and the lookups every later stage uses.

The whole-team checks, resolution and compilation (``_checks``, ``_resolve``,
``_compile``) read a ``TeamFields``; ``TeamSpec`` adds the validation that runs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from corral.manifest._policies import BudgetSpec, GuardSpec, TeamBudgetSpec
from corral.manifest._spec import (
    AgentSpec,
    CheckpointSpec,
    ContextSpec,
    FlowSpec,
    ModelSpec,
    SchemaSpec,
    ToolSpec,
    TraceSpec,
)
from corral.manifest._types import Identifier, SchemaName
from corral.manifest._types import Spec as _Spec


class TeamFields(_Spec):
    """The fields of a team definition (see ``TeamSpec``)."""

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
    trace: TraceSpec = TraceSpec()
    """What traces keep of prompts and model answers."""
    source: SkipJsonSchema[Path | None] = Field(default=None, exclude=True)

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
