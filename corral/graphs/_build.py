"""``TeamPlan`` -> LangGraph ``StateGraph``: one node per flow agent, typed edges as
destinations; the runtime (runners, meters, delegation rounds) wired once."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END as GRAPH_END
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from opentelemetry.trace import TracerProvider
from typing_extensions import TypedDict

from corral.context import ContextStore
from corral.errors import PermissionDenied
from corral.guards import Meter, Verdicts
from corral.manifest import END, AgentPlan, TeamPlan
from corral.models import model_label, resolve_model
from corral.nodes import (
    REVIEW,
    AgentRunner,
    Delegation,
    FlowNode,
    FunctionRunner,
    GraphRunner,
    ReviewNode,
    Runner,
    Services,
    TeamState,
    guarded_state,
    round_graph,
)
from corral.observability import Metrics, QuietMetrics, Spans
from corral.workspace import Alert, DetachedWorkspace, RunRegistry, Workspace

CompiledTeam = CompiledStateGraph[TeamState, None, TeamState, TeamState]


def wire(
    plan: TeamPlan,
    workspace: Workspace | None = None,
    *,
    metrics: Metrics | None = None,
    on_budget_alert: Callable[[Alert], None] | None = None,
    clock: Callable[[], float] = time.time,
    tracer_provider: TracerProvider | None = None,
) -> Services:
    """The services every node of ``plan`` shares, built whole from ``workspace`` (a
    ``DetachedWorkspace``, which keeps nothing, when none is given). Spans go to
    ``tracer_provider``, else to the process's global one (a no-op unless set)."""
    storage: Workspace = workspace if workspace is not None else DetachedWorkspace()
    if metrics is None:  # nobody reads the metrics of a graph with no workspace
        metrics = Metrics() if workspace is not None else QuietMetrics()
    verdicts = (
        Verdicts(storage.events, metrics, on_budget_alert, clock)
        if on_budget_alert is not None
        else Verdicts(storage.events, metrics, clock=clock)
    )

    def denied(error: PermissionDenied, run_id: str) -> None:
        storage.events.record(run_id, "permission_denied", error.agent, error.to_dict())

    context = ContextStore(
        lambda: storage.store,
        plan.name,
        storage.audit,
        clock=clock,
        note_ttl=plan.context.note_ttl_seconds,
        on_denied=denied,
    )
    return Services(
        runs=storage.runs,
        board=storage.board,
        ledger=storage.ledger,
        events=storage.events,
        audit=storage.audit,
        tool_calls=storage.tool_calls,
        breakers=storage.breakers,
        context=context,
        verdicts=verdicts,
        metrics=metrics,
        spans=Spans(tracer_provider),
        prompt_chars=plan.context.prompt_chars,
        clock=clock,
    )


def build_graph(
    plan: TeamPlan,
    services: Services,
    chat_models: Mapping[str, BaseChatModel] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
) -> CompiledTeam:
    """Compile ``plan`` into a runnable graph; ``chat_models`` overrides models by name
    (``default`` for every agent that names none)."""
    runners = build_runners(plan, services, dict(chat_models or {}))
    entry, exit_ = plan.schemas[plan.input_name], plan.schemas[plan.output_name]
    state = guarded_state(
        plan.schemas,
        exit_,
        whole_path=plan.checkpoint.keep is not None,
        reviews=plan.reviews,
        joins=any(agent.gathers for agent in plan.agents.values()),
    )
    builder: StateGraph[Any, None, Any, Any] = StateGraph(
        state, input_schema=entry, output_schema=exit_
    )
    # The entry agent reads the flow's input from the graph's input channels.
    typed: Any = TypedDict
    first = typed(
        "EntryState",
        {**state.__annotations__, **dict.fromkeys(entry.model_fields, Any)},
        total=False,
    )
    for agent in plan.agents.values():
        if agent.in_flow:  # a worker reached only by delegation runs inside its manager
            goes = destinations(agent)
            builder.add_node(
                agent.id,
                FlowNode(
                    agent,
                    runners[agent.id],
                    services,
                    entry if agent.id == plan.entry else None,
                    max_steps=plan.guards.max_steps,
                ),
                destinations=goes,
                defer=bool(agent.gathers),  # a join waits for every branch
                input_schema=first if agent.id == plan.entry else _reads(state, agent, goes),
            )
    return _finish(
        builder, plan, checkpointer, plan.entry, clock=services.clock, runs=services.runs
    )


def _reads(state: type, agent: AgentPlan, goes: Mapping[str, str]) -> type:
    """The channels a flow step reads (a step's cost grows with the channels it reads):
    its inbound (a join: the branches' answers), and if it may end the run, its path and
    usage (which a run started through the graph itself records as it ends)."""
    keep = {"_joined" if agent.gathers else "_handoff"}
    if GRAPH_END in goes:
        keep |= {"_path", "_usage"}
    fields = {k: v for k, v in state.__annotations__.items() if k in keep}
    return TypedDict("StepState", fields, total=False)  # type: ignore[operator,no-any-return]


def draw_graph(plan: TeamPlan) -> CompiledTeam:
    """The graph's shape only, for drawings: the same nodes and edges, no runtime."""
    builder = StateGraph(TeamState)
    for agent in plan.agents.values():
        if agent.in_flow:
            builder.add_node(agent.id, _nothing, destinations=destinations(agent))
    return _finish(builder, plan, None, plan.entry)


def shape_graph(
    plan: TeamPlan, checkpointer: BaseCheckpointSaver[Any], *, path: bool = True
) -> CompiledTeam:
    """The graph with empty nodes on a workspace's checkpointer: enough to read a run's
    history without building the runtime (no chat model, no provider credentials).
    Without ``path``, its states leave out the run's path, so reading a long history
    does not rebuild the path at every step."""
    entry = plan.schemas[plan.input_name]
    state = (
        TeamState
        if path
        else TypedDict(  # type: ignore[operator]
            "StepState", {k: v for k, v in TeamState.__annotations__.items() if k != "_path"}
        )
    )
    builder = StateGraph(state, input_schema=entry, output_schema=plan.schemas[plan.output_name])
    for agent in plan.agents.values():
        if agent.in_flow:
            builder.add_node(
                agent.id, _nothing, destinations=destinations(agent), input_schema=state
            )
    return _finish(builder, plan, checkpointer, plan.entry, state=state)  # type: ignore[arg-type]


def _nothing(state: TeamState) -> TeamState:
    del state
    return {}


def _finish(
    builder: StateGraph[TeamState, None, TeamState, TeamState],
    plan: TeamPlan,
    checkpointer: BaseCheckpointSaver[Any] | None,
    first: str,
    *,
    clock: Callable[[], float] = time.time,
    runs: RunRegistry | None = None,
    state: type | None = None,
) -> CompiledTeam:
    if plan.reviews:
        builder.add_node(
            REVIEW,
            ReviewNode(plan.agents, plan.schemas, runs or DetachedWorkspace().runs, clock),
            destinations=dict.fromkeys([*sorted(plan.flow_agents), GRAPH_END], "reviewed"),
            input_schema=state,
        )
    builder.add_edge(START, first)
    return builder.compile(checkpointer=checkpointer, name=plan.name)


def destinations(agent: AgentPlan) -> dict[str, str]:
    """Where a flow agent's output may go, each labelled with its schema and condition."""
    if agent.fans_out:
        return dict.fromkeys(agent.fans_out, f"{agent.out_name} (parallel)")
    if agent.joins is not None:
        return {agent.joins: f"{agent.out_name} (joined)"}
    labels: dict[str, list[str]] = {}
    for edge in agent.edges:
        labels.setdefault(GRAPH_END if edge.to == END else edge.to, []).append(edge.label)
    if agent.reviewed:
        labels[REVIEW] = ["for review"]
    return {k: " | ".join(v) for k, v in labels.items()}


def build_runners(
    plan: TeamPlan, services: Services, overrides: dict[str, BaseChatModel]
) -> dict[str, Runner]:
    """One runner per agent, sharing one chat model per model name and one round graph.

    The round graph reads the runners it returns, which are all in place before any run.
    """
    runners: dict[str, Runner] = {}
    rounds = round_graph(runners, services.metrics, services.clock, services.spans)
    models = _Models(plan, overrides)
    for agent in plan.agents.values():
        if agent.function is not None:
            runners[agent.id] = FunctionRunner(agent, agent.function)
            continue
        if agent.graph is not None:
            runners[agent.id] = GraphRunner(agent, agent.graph)
            continue
        assert agent.model is not None
        assert agent.model_key is not None
        model = models.get(agent.model_key, agent.model)
        delegation = (
            Delegation(agent, services, rounds, lease=plan.guards.lease_seconds, limits=plan.limits)
            if agent.delegates_to
            else None
        )
        fallback: Runner | None = None
        if agent.fallback_model is not None and agent.fallback_model_key is not None:
            other = models.get(agent.fallback_model_key, agent.fallback_model)
            meter = _meter(plan, agent, agent.fallback_model, other, services)
            fallback = AgentRunner(agent, other, services, meter, with_tools=False, breaker=False)
        elif agent.fallback_function is not None:
            fallback = FunctionRunner(agent, agent.fallback_function)
        runners[agent.id] = AgentRunner(
            agent,
            model,
            services,
            _meter(plan, agent, agent.model, model, services),
            delegation=delegation,
            fallback=fallback,
        )
    return runners


def _meter(
    plan: TeamPlan, agent: AgentPlan, name: str | None, model: BaseChatModel, services: Services
) -> Meter:
    """The agent's budget meter on one of its models (``name`` under the plan's models)."""
    found = plan.models.get(name or "scripted")
    declared = found.use if found is not None else "scripted"
    return Meter(
        agent=agent.id,
        model_label=model_label(model, declared),
        ledger=services.ledger,
        limits=agent.budget,
        verdicts=services.verdicts,
        policy=agent.policy("budget"),
        content=plan.trace.content,
        declared_price=found.price if found is not None else None,
    )


class _Models:
    """One chat model instance per model name, shared by the agents that use it."""

    def __init__(self, plan: TeamPlan, overrides: dict[str, BaseChatModel]) -> None:
        self.plan = plan
        self.cache = overrides

    def get(self, key: str, name: str) -> BaseChatModel:
        found = self.cache.get(key) or self.cache.get(name)
        if found is None:
            spec = self.plan.models[name]
            found = self.cache[name] = resolve_model(
                name, spec.use, spec.params, spec.script, loc=spec.loc
            )
        return found
