"""``Team``: the whole team definition, validated at construction, compiled on demand."""

from __future__ import annotations

from collections.abc import Sequence
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
    from corral.graphs import App
    from corral.manifest._resolve import Resolved


class Team(_Spec):
    """A team of agents: the builder. ``compile()`` turns it into a runnable ``App``.

    Built from YAML by ``load_team(path)`` or directly in Python; both give an equal
    object. Construction checks the whole team and raises ``ManifestError`` listing
    every problem found.
    """

    version: Literal[1] = 1
    name: Identifier
    description: str = ""
    models: dict[Identifier, ModelSpec | str] = Field(default_factory=dict)
    schemas: dict[SchemaName, SchemaSpec] = Field(min_length=1)
    tools: dict[Identifier, ToolSpec] = Field(default_factory=dict)
    agents: tuple[AgentSpec, ...] = Field(min_length=1)
    flow: FlowSpec
    guards: GuardSpec = GuardSpec()
    budget: TeamBudgetSpec | None = None
    context: ContextSpec = ContextSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    source: SkipJsonSchema[Path | None] = Field(default=None, exclude=True)

    _resolved: Resolved | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # one error hierarchy for YAML and Python alike
            from corral.manifest._salvage import salvage_problems

            problems = [pydantic_problem(e, Team, data) for e in exc.errors()]
            raise ManifestError(problems + salvage_problems(Team, data, problems)) from None

    @model_validator(mode="after")
    def _check_whole_team(self) -> Team:
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
        if not isinstance(other, Team):
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

    def draw(self, format: str = "mermaid", *, highlight: Sequence[str] = ()) -> str | bytes:
        """The team drawn offline: mermaid, dot, svg, png (bytes), json or graphml."""
        from corral.graphs import render

        return render(self, format, highlight)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from corral.graphs import mimebundle

        return mimebundle(self)

    def compile(self, *, db: str | Path | None = None, **options: Any) -> App:
        """Build the LangGraph graph and open the workspace database.

        Args:
            db: SQLite file for checkpoints and run records. Defaults to the
                manifest's ``checkpoint.db``, else ``.corral/corral.db``.
            **options: passed to ``App`` (for example ``chat_models`` overrides).
        """
        from corral.graphs import App

        return App(self, db=db, **options)
