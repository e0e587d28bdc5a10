"""Cost budgets need prices: a ``*_cost_usd`` budget (or run guard) on a model with no known price
(neither declared under ``models.NAME.price`` nor in ``genai-prices``) would never trip,
so the team is refused unless the model says ``price: unknown_ok``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from corral.errors import Problem
from corral.manifest._spec import AgentSpec, ModelSpec
from corral.models import price_known

if TYPE_CHECKING:
    from corral.manifest._fields import TeamFields as Team

Loc = tuple[str | int, ...]
COST_SUFFIX = "_cost_usd"


def cost_problems(team: Team) -> list[Problem]:
    """One problem per cost budget and unpriced model it would meter, at the budget."""
    problems: dict[tuple[Loc, str], Problem] = {}
    whole = team.budget
    team_costs: list[tuple[str, Loc]] = [
        (name, (section, name))
        for section, spec in (("budget", whole), ("guards", team.guards))  # guards: a run's
        for name in (type(spec).model_fields if spec is not None else ())
        if name.endswith(COST_SUFFIX) and getattr(spec, name) is not None
    ]
    for i, agent in enumerate(team.agents):
        if agent.kind != "agent":
            continue
        budgets = [*_agent_costs(team, agent, i), *team_costs]
        if not budgets:
            continue
        for shown, spec in _models(team, agent):
            if spec.use == "scripted" or spec.price is not None or price_known(spec.use):
                continue
            for field, loc in budgets:
                problems.setdefault((loc, spec.use), _problem(agent.id, field, shown, spec, loc))
    return list(problems.values())


def _agent_costs(team: Team, agent: AgentSpec, i: int) -> Iterator[tuple[str, Loc]]:
    """The agent's cost budgets, each where it is set (its own budget or the defaults)."""
    budget = team.budget_of(agent)
    if budget is None:
        return
    for name in type(budget).model_fields:
        if name.endswith(COST_SUFFIX) and getattr(budget, name) is not None:
            own = agent.budget is not None and name in agent.budget.model_fields_set
            yield (
                name,
                (("agents", i, "budget", name) if own else ("budget", "agent_defaults", name)),
            )


def _models(team: Team, agent: AgentSpec) -> Iterator[tuple[str | None, ModelSpec]]:
    """The models an agent may call (its model and fallback model), each with the name it
    has under ``models:`` (``None`` when named inline)."""
    asked = [agent.model]
    if agent.fallback is not None and agent.fallback.model is not None:
        asked.append(agent.fallback.model)
    for key in asked:
        name = key or "default"
        found = team.models.get(name)
        if found is None and key is None:
            continue  # no default declared: the scripted model
        spec = found if found is not None else name
        yield (
            (name if found is not None else None),
            (ModelSpec(use=spec) if isinstance(spec, str) else spec),
        )


def _problem(agent: str, field: str, name: str | None, spec: ModelSpec, loc: Loc) -> Problem:
    where = f"models.{name}.price" if name is not None else "a model under `models:` with a price"
    return Problem(
        f"{field} is a cost budget, but model {spec.use!r} (of agent {agent!r}) has no "
        "known price (genai-prices does not know it), so the budget would never trip",
        f"declare a price or drop the cost budget: set {where} to "
        "{input_per_mtok: ..., output_per_mtok: ...} (USD per million tokens), "
        "or `price: unknown_ok` to record its cost as unknown",
        loc,
    )
