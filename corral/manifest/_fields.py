"""``TeamFields``: what a team definition holds, and the lookups every later stage uses.

The whole-team checks, resolution and compilation (``_checks``, ``_resolve``,
``_compile``) read a ``TeamFields``; ``TeamSpec`` adds the validation that runs them.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from corral.errors import suggest
from corral.manifest._policies import BudgetSpec, GuardSpec, TeamBudgetSpec
from corral.manifest._spec import (
    AgentSpec,
    CheckpointSpec,
    ContextSpec,
    EdgeSpec,
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
    """Chat models by name: a spec, a ``use`` string, or another model's name (``default:
    fast``); ``default`` serves agents naming none."""
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
        return self._by_id[agent_id]

    def edges_from(self, agent_id: str) -> tuple[EdgeSpec, ...]:
        """The flow edges leaving an agent, in file order."""
        return self._edges_from.get(agent_id, ())

    def edges_into(self, agent_id: str) -> tuple[EdgeSpec, ...]:
        """The flow edges arriving at an agent, in file order."""
        return self._edges_into.get(agent_id, ())

    def reports_of(self, agent_id: str) -> tuple[AgentSpec, ...]:
        """The agents reporting to an agent, in file order."""
        return self._reports.get(agent_id, ())

    # Indexes built once per (frozen) team, so whole-team checks stay linear in its size.
    @cached_property
    def _by_id(self) -> dict[str, AgentSpec]:
        found: dict[str, AgentSpec] = {}
        for spec in self.agents:
            found.setdefault(spec.id, spec)  # the first of duplicates, as a scan finds
        return found

    @cached_property
    def _edges_from(self) -> dict[str, tuple[EdgeSpec, ...]]:
        found: dict[str, list[EdgeSpec]] = {}
        for edge in self.flow.edges:
            found.setdefault(edge.from_, []).append(edge)
        return {k: tuple(v) for k, v in found.items()}

    @cached_property
    def _edges_into(self) -> dict[str, tuple[EdgeSpec, ...]]:
        found: dict[str, list[EdgeSpec]] = {}
        for edge in self.flow.edges:
            found.setdefault(edge.to, []).append(edge)
        return {k: tuple(v) for k, v in found.items()}

    @field_validator("version", mode="before")
    @classmethod
    def _no_bool_version(cls, version: object) -> object:
        """``version: true`` is refused: a bool is an int in Python, and ``True == 1``
        would pass ``Literal[1]``."""
        if isinstance(version, bool):
            raise ValueError("version must be the whole number 1, not a boolean")
        return version

    @field_validator("models")
    @classmethod
    def _aliases(cls, models: dict[str, ModelSpec | str]) -> dict[str, ModelSpec | str]:
        """A string naming another model under ``models:`` (``default: fast``) is that model;
        any other string is a ``use`` (``scripted`` or ``provider:model``)."""
        resolved: dict[str, ModelSpec | str] = {}
        for name, spec in models.items():
            seen, found = [name], spec
            while isinstance(found, str) and found in models and found != "scripted":
                if found in seen:
                    raise ValueError(f"models {' -> '.join([*seen, found])} name each other")
                seen.append(found)
                found = models[found]
            if isinstance(found, str) and found != "scripted" and ":" not in found:
                raise ValueError(
                    f"model {name!r} is {found!r}: neither 'scripted', a 'provider:model' "
                    f"string nor another model under `models:`; "
                    f"{suggest(found, [*models, 'scripted'])}"
                )
            resolved[name] = found
        return resolved

    @cached_property
    def _reports(self) -> dict[str, tuple[AgentSpec, ...]]:
        found: dict[str, list[AgentSpec]] = {}
        for spec in self.agents:
            if spec.reports_to is not None:
                found.setdefault(spec.reports_to, []).append(spec)
        return {k: tuple(v) for k, v in found.items()}

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
