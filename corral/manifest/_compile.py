"""The compile step: a validated team spec -> a frozen ``TeamPlan``.

Every effective per-agent setting is resolved here, once: model, budget limits,
guards, retries, fallback, tools, identity for context, inbound and outbound schemas.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import networkx as nx

from corral.manifest._plan import AgentPlan, ModelPlan, ReportPlan, TeamPlan, ToolPlan, Who
from corral.manifest._policies import DEFAULT_POLICY, BudgetSpec
from corral.manifest._spec import ModelSpec
from corral.models import Price
from corral.workspace import BudgetLimits, Limits

if TYPE_CHECKING:
    from corral.manifest._fields import TeamFields as TeamSpec
    from corral.manifest._resolve import Resolved


def compile_plan(team: TeamSpec, resolved: Resolved) -> TeamPlan:
    """Resolve every effective setting of ``team`` into a frozen plan."""
    managers = {a.reports_to for a in team.agents if a.reports_to is not None}
    flow = {e.from_ for e in team.flow.edges} | {team.flow.entry}
    steps = team.flow.parallel
    flow |= {s.from_ for s in steps} | {b for s in steps for b in s.to} | {s.join for s in steps}
    fans = {s.from_: s for s in steps}
    joins = {b: s.join for s in steps for b in s.to}
    gathers = {s.join: s.to for s in steps}
    fed = {e.to for e in team.flow.edges} | {team.flow.entry} | set(joins) | set(gathers)
    tree: nx.DiGraph[str] = nx.DiGraph()
    tree.add_edges_from((a.reports_to, a.id) for a in team.agents if a.reports_to)
    models: dict[str, ModelPlan] = {}
    agents: dict[str, AgentPlan] = {}
    for i, agent in enumerate(team.agents):
        in_name = inbound_schema(team, agent.id)
        edges = team.edges_from(agent.id)
        fan = fans.get(agent.id)
        out_name = agent.output or (fan.schema_name if fan else edges[0].schema_name)
        reports = tuple(
            ReportPlan(
                r.id,
                r.role,
                inbound_schema(team, r.id),
                resolved.schemas[inbound_schema(team, r.id)],
                r.grant.share if r.grant else None,
                r.grant.tokens if r.grant else None,
                r.id not in fed,
            )
            for r in team.reports_of(agent.id)
        )
        model_key = model = fallback_key = fallback_model = None
        if agent.kind == "agent":
            model_key, model = _model(team, resolved, agent.model, models, ("agents", i, "model"))
            if agent.fallback is not None and agent.fallback.model is not None:
                fallback_key, fallback_model = _model(
                    team, resolved, agent.fallback.model, models, ("agents", i, "fallback", "model")
                )
        on_failure = agent.on_failure or team.guards.on_failure
        budget = team.budget_of(agent)
        identity = (
            Who(
                agent=agent.id,
                team=agent.team,
                supervisor=agent.id in managers,
                can_write_global="can_write_global" in agent.permissions.granted,
                managed_teams=frozenset(
                    t for t in (team.agent(a).team for a in _below(tree, agent.id)) if t is not None
                ),
            )
            if agent.context
            else None
        )
        agents[agent.id] = AgentPlan(
            id=agent.id,
            spec=agent,
            team=team.name,
            in_name=in_name,
            in_schema=resolved.schemas[in_name],
            out_name=out_name,
            out_schema=resolved.schemas[out_name],
            edges=edges,
            in_flow=agent.id in flow,
            reports=reports,
            model_key=model_key,
            model=model,
            fallback_model_key=fallback_key,
            fallback_model=fallback_model,
            function=resolved.functions.get(agent.id),
            graph=resolved.graphs.get(agent.id),
            fallback_function=resolved.functions.get(f"{agent.id}:fallback"),
            tools=tuple(
                ToolPlan(
                    name,
                    resolved.tools[name],
                    tuple(team.tools[name].requires),
                    team.tools[name].requires_review,
                    team.tools[name].idempotent,
                    team.tools[name].on_in_doubt,
                )
                for name in agent.tools
            ),
            identity=identity,
            budget=_limits(budget, team, granted=_granted(team, agent.id)),
            budgeted=budget is not None,
            retries=agent.max_validation_retries
            if agent.max_validation_retries is not None
            else team.guards.max_validation_retries,
            tool_rounds=team.guards.max_tool_rounds,
            max_calls=agent.guards.max_llm_calls_per_task or team.guards.max_llm_calls_per_task,
            retry=agent.retry or team.guards.retry,
            breaker=team.guards.breaker,
            max_depth=agent.guards.max_delegation_depth or team.guards.max_delegation_depth,
            max_subtasks=agent.guards.max_subtasks or team.guards.max_subtasks,
            on_failure=on_failure,
            reviewed=on_failure == "review"
            or agent.min_confidence is not None
            or any(e.review or e.min_confidence is not None for e in edges),
            policies={guard: team.guards.policy(guard) for guard in DEFAULT_POLICY},
            fans_out=fan.to if fan else (),
            joins=joins.get(agent.id),
            gathers=gathers.get(agent.id, ()),
            max_repeats=team.guards.max_repeats,
        )
    rate = team.guards.task_rate
    whole = team.budget
    definition = definition_of(team)
    return TeamPlan(
        name=team.name,
        source=team.source,
        entry=team.flow.entry,
        input_name=team.flow.input,
        output_name=team.flow.output,
        edges=team.flow.edges,
        schemas=dict(resolved.schemas),
        agents=agents,
        models=models,
        guards=team.guards,
        limits=Limits(
            rate_count=rate.count if rate else None,
            rate_seconds=rate.per_seconds if rate else 3600.0,
            cooldown_seconds=team.guards.cooldown_seconds,
            max_pending=team.guards.max_pending_tasks,
        ),
        team_budget=_limits(None, team) if whole is not None else None,
        context=team.context,
        checkpoint=team.checkpoint,
        trace=team.trace,
        fingerprint=fingerprint(definition),
        definition=definition,
    )


def inbound_schema(team: TeamSpec, agent_id: str) -> str:
    """The schema an agent receives: its declared input, the flow input, or its edges'."""
    declared = team.agent(agent_id).input
    if declared is not None:
        return declared
    if agent_id == team.flow.entry:
        return team.flow.input
    for step in team.flow.parallel:
        if agent_id in step.to:
            return step.schema_name
    return team.edges_into(agent_id)[0].schema_name


def _below(tree: nx.DiGraph[str], agent_id: str) -> set[str]:
    """Everyone who reports to ``agent_id``, directly or not."""
    return nx.descendants(tree, agent_id) if agent_id in tree else set()


def _model(
    team: TeamSpec,
    resolved: Resolved,
    asked: str | None,
    models: dict[str, ModelPlan],
    loc: tuple[str | int, ...],
) -> tuple[str, str]:
    """The key an agent asks for and the model it gets (added to ``models``); ``loc`` is
    where the agent names it, for a model not declared under ``models``."""
    key = asked or "default"
    name = key if asked is not None or "default" in team.models else "scripted"
    if name not in models:
        found: ModelSpec | str = team.models.get(name) or name
        spec = ModelSpec(use=found) if isinstance(found, str) else found
        where = ("models", name, "use") if name in team.models else loc
        declared = spec.price if not isinstance(spec.price, str) else None
        models[name] = ModelPlan(
            name,
            spec.use,
            dict(spec.params),
            resolved.scripts.get(name),
            where,
            Price(**declared.model_dump()) if declared is not None else None,
        )
    return key, name


def _granted(team: TeamSpec, agent_id: str) -> bool:
    """True when a supervisor above the agent has a task budget to grant from."""
    above = team.agent(agent_id).reports_to
    while above is not None:
        budget = team.budget_of(team.agent(above))
        if budget is not None and budget.max_task_tokens is not None:
            return True
        above = team.agent(above).reports_to
    return False


def _limits(budget: BudgetSpec | None, team: TeamSpec, *, granted: bool = False) -> BudgetLimits:
    """One agent's budget layers, the team's and the run's, as the ledger checks them."""
    whole = team.budget
    return BudgetLimits(
        run_tokens=team.guards.max_run_tokens,
        run_cost=team.guards.max_run_cost_usd,
        granted=granted,
        max_input_tokens=budget.max_input_tokens if budget else None,
        max_output_tokens=budget.max_output_tokens if budget else None,
        trim_input=budget.trim_input if budget else False,
        task_tokens=budget.max_task_tokens if budget else None,
        task_calls=budget.max_task_calls if budget else None,
        daily_tokens=budget.daily_tokens if budget else None,
        daily_cost=budget.daily_cost_usd if budget else None,
        team_daily_tokens=whole.daily_tokens if whole else None,
        team_daily_cost=whole.daily_cost_usd if whole else None,
        hard_stop=budget.hard_stop if budget else True,
        team_hard_stop=whole.hard_stop if whole else True,
        alert_threshold=budget.alert_threshold if budget else 0.8,
        team_alert_threshold=whole.alert_threshold if whole else 0.8,
    )


def definition_of(team: TeamSpec) -> dict[str, Any]:
    """The definition as JSON; Python objects in it count by their names."""
    data = team.model_dump(by_alias=True)
    text = json.dumps(data, sort_keys=True, default=lambda o: getattr(o, "__qualname__", repr(o)))
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def fingerprint(definition: Mapping[str, Any]) -> str:
    """A short hash of a definition (``definition_of``)."""
    text = json.dumps(definition, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
