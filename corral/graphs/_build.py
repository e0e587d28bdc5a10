"""``Team`` -> LangGraph ``StateGraph``: one node per agent, typed edges as destinations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END as GRAPH_END
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from corral.context import Who, context_tools
from corral.graphs._state import TeamState
from corral.guards import BudgetLimits
from corral.manifest._spec import END, AgentSpec
from corral.manifest._team import Team
from corral.models import ScriptedChatModel, resolve_model
from corral.nodes import (
    REVIEW,
    AgentRunner,
    Delegation,
    FlowNode,
    FunctionRunner,
    Hierarchy,
    NodePlan,
    Report,
    ReviewNode,
    edge_label,
)
from corral.nodes._meter import Meter

CompiledTeam = CompiledStateGraph[TeamState, None, TeamState, TeamState]


def build_graph(
    team: Team,
    chat_models: Mapping[str, BaseChatModel] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    hierarchy: Hierarchy | None = None,
) -> CompiledTeam:
    """Compile ``team``; ``chat_models`` overrides models by name (``default`` for all).

    ``hierarchy`` carries the workspace's task board and events; without one (a drawing,
    a benchmark) the graph is complete but a delegation at run time is an error.
    """
    resolved = team.resolved
    models = _Models(team, dict(chat_models or {}))
    hierarchy = hierarchy or Hierarchy(board=None, events=None, guards=team.guards)
    hierarchy.tool_specs = dict(team.tools)
    hierarchy.prompt_chars = team.context.prompt_chars
    managers = {a.reports_to for a in team.agents if a.reports_to is not None}
    plans = {a.id: _plan(team, a) for a in team.agents}
    for agent in team.agents:
        plan = plans[agent.id]
        hierarchy.inputs[agent.id] = inbound_schema(team, agent.id)
        if agent.kind == "function":
            hierarchy.runners[agent.id] = FunctionRunner(
                plan, resolved.functions[agent.id], resolved.schemas[hierarchy.inputs[agent.id]]
            )
            continue
        delegation = None
        if agent.id in managers:
            reports = {
                r.id: Report(
                    r.id,
                    r.role,
                    inbound_schema(team, r.id),
                    resolved.schemas[inbound_schema(team, r.id)],
                )
                for r in team.agents
                if r.reports_to == agent.id
            }
            delegation = Delegation(agent, reports, hierarchy)
        model = models.get(agent)
        tools = {name: resolved.tools[name] for name in agent.tools}
        who = _who(team, agent, managers) if agent.context else None
        if who is not None and hierarchy.context is not None:
            tools |= context_tools(hierarchy.context, who)
        runner = AgentRunner(
            plan,
            model,
            tools=tools,
            delegation=delegation,
            hierarchy=hierarchy,
            meter=_meter(team, agent, model, hierarchy),
        )
        runner.who = who
        fallback = agent.fallback
        if fallback is not None and fallback.model is not None:
            other = models.get(agent.model_copy(update={"model": fallback.model}))
            runner.fallback = AgentRunner(
                plan, other, hierarchy=hierarchy, meter=_meter(team, agent, other, hierarchy)
            )
        elif fallback is not None:
            runner.fallback = FunctionRunner(
                plan,
                resolved.functions[f"{agent.id}:fallback"],
                resolved.schemas[hierarchy.inputs[agent.id]],
            )
        hierarchy.runners[agent.id] = runner
    hierarchy.build_round_graph()
    builder = StateGraph(TeamState)
    flow_agents = {e.from_ for e in team.flow.edges} | {team.flow.entry}
    reviews = False
    for agent in team.agents:
        if agent.id not in flow_agents:
            continue  # a worker reached only by delegation runs inside its manager's rounds
        labels: dict[str, list[str]] = {}
        for edge in plans[agent.id].edges:
            labels.setdefault(GRAPH_END if edge.to == END else edge.to, []).append(edge_label(edge))
        on_failure = agent.on_failure or team.guards.on_failure
        if (
            on_failure == "review"
            or agent.min_confidence is not None
            or any(e.review or e.min_confidence is not None for e in plans[agent.id].edges)
        ):
            labels[REVIEW] = ["for review"]
            reviews = True
        builder.add_node(
            agent.id,
            FlowNode(plans[agent.id], hierarchy.runners[agent.id], on_failure, hierarchy.metrics),
            destinations={k: " | ".join(v) for k, v in labels.items()},
        )
    if reviews:
        builder.add_node(
            REVIEW,
            ReviewNode(plans, resolved.schemas),
            destinations=dict.fromkeys([*sorted(flow_agents), GRAPH_END], "reviewed"),
        )
    builder.add_edge(START, team.flow.entry)
    return builder.compile(checkpointer=checkpointer, name=team.name)


def _who(team: Team, agent: AgentSpec, managers: set[str]) -> Who:
    """An agent's identity for context rules: its team, rights, and the teams it manages."""
    tree: nx.DiGraph[str] = nx.DiGraph()
    tree.add_edges_from((a.reports_to, a.id) for a in team.agents if a.reports_to)
    below = nx.descendants(tree, agent.id) if agent.id in tree else set()
    teams = frozenset(a.team for a in team.agents if a.id in below and a.team is not None)
    return Who(
        agent=agent.id,
        team=agent.team,
        supervisor=agent.id in managers,
        can_write_global=agent.permissions.can_write_global,
        managed_teams=teams,
    )


def _meter(
    team: Team, agent: AgentSpec, model: BaseChatModel, hierarchy: Hierarchy
) -> Meter | None:
    """The agent's budget meter, when the graph has a workspace ledger."""
    if hierarchy.ledger is None:
        return None
    budget = team.budget_of(agent)
    whole = team.budget
    limits = BudgetLimits(
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
    policy = hierarchy.guards.policy("budget")
    return Meter(
        agent=agent.id,
        model_label=model_label(model, team.model_spec(agent).use),
        ledger=hierarchy.ledger,
        limits=limits,
        budget=budget,
        on_trip=lambda work, exc: hierarchy.record_trip(work, exc, policy),
        on_alert=hierarchy.record_alert,
        metrics=hierarchy.metrics,
    )


def model_label(model: BaseChatModel, declared: str) -> str:
    """``provider:model`` for pricing: from the model's own tracing parameters if it
    reports them (LangChain's ``ls_provider``/``ls_model_name``), else as declared."""
    if isinstance(model, ScriptedChatModel):
        return "scripted"
    try:
        params = model._get_ls_params()
    except Exception:  # not every chat model implements it
        return declared
    provider, name = params.get("ls_provider"), params.get("ls_model_name")
    return f"{provider}:{name}" if provider and name else declared


def _plan(team: Team, agent: AgentSpec) -> NodePlan:
    edges = tuple(e for e in team.flow.edges if e.from_ == agent.id)
    out_name = agent.output or edges[0].schema_name
    return NodePlan(
        agent=agent,
        team=team.name,
        out_name=out_name,
        out_schema=team.resolved.schemas[out_name],
        edges=edges,
        retries=_retries(team, agent),
        tool_rounds=team.guards.max_tool_rounds,
        max_calls=agent.guards.max_llm_calls_per_task or team.guards.max_llm_calls_per_task,
    )


def inbound_schema(team: Team, agent_id: str) -> str:
    """The schema an agent receives: its declared input, the flow input, or its edges'."""
    declared = team.agent(agent_id).input
    if declared is not None:
        return declared
    if agent_id == team.flow.entry:
        return team.flow.input
    return next(e.schema_name for e in team.flow.edges if e.to == agent_id)


def _retries(team: Team, agent: AgentSpec) -> int:
    if agent.max_validation_retries is not None:
        return agent.max_validation_retries
    return team.guards.max_validation_retries


class _Models:
    """One chat model instance per model name, shared by the agents that use it."""

    def __init__(self, team: Team, overrides: dict[str, BaseChatModel]) -> None:
        self.team = team
        self.cache = overrides

    def get(self, agent: AgentSpec) -> BaseChatModel:
        name = agent.model or "default"
        if name not in self.cache:
            if agent.model is None and "default" not in self.team.models:
                name = "scripted"
            spec = self.team.model_spec(agent)
            if name not in self.cache:
                self.cache[name] = resolve_model(name, spec, self.team.resolved.scripts.get(name))
        return self.cache[name]
