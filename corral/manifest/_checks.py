"""Whole-team checks: references, the reports-to forest, reachability, edge typing.

Each check returns ``Problem`` values located by field path; the YAML loader turns
paths into ``file:line``. Every problem is collected; none stops the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from corral.errors import Problem, suggest
from corral.manifest._types import END

if TYPE_CHECKING:
    from corral.manifest._fields import TeamFields as Team


def check_team(team: Team) -> list[Problem]:
    """Every cross-reference problem of a structurally valid team."""
    return [
        *_budgets(team),
        *_duplicate_ids(team),
        *_references(team),
        *_hierarchy(team),
        *_edges(team),
        *_reachability(team),
    ]


def _budgets(team: Team) -> list[Problem]:
    problems = []
    team_daily = team.budget.daily_tokens if team.budget is not None else None
    for i, agent in enumerate(team.agents):
        if agent.budget is None:
            continue
        b = agent.budget
        per_call = (b.max_input_tokens or 0) + (b.max_output_tokens or 0)
        for layer, limit in (
            ("daily_tokens", b.daily_tokens),
            ("max_task_tokens", b.max_task_tokens),
        ):
            if limit is not None and per_call > limit:
                problems.append(
                    Problem(
                        f"one call of agent {agent.id!r} may use {per_call} tokens (max input + "
                        f"max output) but its {layer} is {limit}",
                        f"lower max_input_tokens/max_output_tokens or raise {layer}",
                        ("agents", i, "budget", layer),
                    )
                )
        if b.daily_tokens is not None and team_daily is not None and b.daily_tokens > team_daily:
            problems.append(
                Problem(
                    f"agent {agent.id!r} may use {b.daily_tokens} tokens a day, more than the "
                    f"team's {team_daily}",
                    "keep each agent's daily_tokens within the team's",
                    ("agents", i, "budget", "daily_tokens"),
                )
            )
    return problems


def _duplicate_ids(team: Team) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    for i, agent in enumerate(team.agents):
        if agent.id in seen:
            problems.append(
                Problem(
                    f"duplicate agent id {agent.id!r} (first used by agents[{seen[agent.id]}])",
                    "give every agent a unique id",
                    ("agents", i, "id"),
                )
            )
        seen.setdefault(agent.id, i)
    return problems


def _references(team: Team) -> list[Problem]:
    ids = {a.id for a in team.agents}
    problems = []
    for i, agent in enumerate(team.agents):
        if agent.reports_to is not None and agent.reports_to not in ids:
            problems.append(
                Problem(
                    f"agent {agent.id!r} reports to unknown agent {agent.reports_to!r}",
                    f"use an existing agent id; {suggest(agent.reports_to, ids)}",
                    ("agents", i, "reports_to"),
                )
            )
        for j, tool in enumerate(agent.tools):
            if tool not in team.tools:
                problems.append(
                    Problem(
                        f"agent {agent.id!r} uses unknown tool {tool!r}",
                        f"declare it under `tools:` or remove it; {suggest(tool, team.tools)}",
                        ("agents", i, "tools", j),
                    )
                )
        for key in ("input", "output"):
            name = getattr(agent, key)
            if name is not None and name not in team.schemas:
                problems.append(_unknown_schema(name, team, ("agents", i, key)))
        fallback = agent.fallback.model if agent.fallback is not None else None
        for model, loc in (
            (agent.model, ("agents", i, "model")),
            (fallback, ("agents", i, "fallback", "model")),
        ):
            if (
                model is not None
                and model not in team.models
                and model != "scripted"
                and ":" not in model
            ):
                problems.append(
                    Problem(
                        f"agent {agent.id!r} uses unknown model {model!r}",
                        "name a model declared under `models:`, 'scripted', or a 'provider:model' "
                        f"string; {suggest(model, [*team.models, 'scripted'])}",
                        loc,
                    )
                )
        if agent.kind in ("function", "graph") and agent.fallback is not None:
            problems.append(
                Problem(
                    f"{agent.kind} node {agent.id!r} has a fallback",
                    "fallbacks are for model-driven "
                    "agents; make the function handle its own failures",
                    ("agents", i, "fallback"),
                )
            )
    flow = team.flow
    if flow.entry not in ids:
        problems.append(
            Problem(
                f"flow entry {flow.entry!r} is not an agent",
                f"set `entry` to an agent id; {suggest(flow.entry, ids)}",
                ("flow", "entry"),
            )
        )
    for key in ("input", "output"):
        name = getattr(flow, key)
        if name not in team.schemas:
            problems.append(_unknown_schema(name, team, ("flow", key)))
    for k, edge in enumerate(flow.edges):
        for key, end in (("from", edge.from_), ("to", edge.to)):
            if end != END and end not in ids:
                problems.append(
                    Problem(
                        f"edge {key} unknown agent {end!r}",
                        f"use an agent id{' or END' if key == 'to' else ''}; {suggest(end, ids)}",
                        ("flow", "edges", k, key),
                    )
                )
        if edge.schema_name not in team.schemas:
            problems.append(_unknown_schema(edge.schema_name, team, ("flow", "edges", k, "schema")))
    return problems


def _unknown_schema(name: str, team: Team, loc: tuple[str | int, ...]) -> Problem:
    return Problem(
        f"unknown schema {name!r}",
        f"declare it under `schemas:`; {suggest(name, team.schemas)}",
        loc,
    )


def _hierarchy(team: Team) -> list[Problem]:
    tree: nx.DiGraph[str] = nx.DiGraph()
    index = {a.id: i for i, a in enumerate(team.agents)}
    tree.add_edges_from(
        (a.id, a.reports_to)
        for a in team.agents
        if a.reports_to is not None and a.reports_to in index
    )
    problems = []
    for cycle in nx.simple_cycles(tree):
        first = min(cycle, key=lambda agent_id: index[agent_id])
        loop = " -> ".join([*cycle, cycle[0]])
        problems.append(
            Problem(
                f"reports_to forms a cycle: {loop}",
                "the reports-to graph must be a tree; make one agent in the loop report to "
                "no one or to an agent outside it",
                ("agents", index[first], "reports_to"),
            )
        )
    return problems


def _edges(team: Team) -> list[Problem]:
    flow = team.flow
    problems = []
    inputs = {a.id: a.input for a in team.agents}
    inputs[flow.entry] = inputs.get(flow.entry) or flow.input
    entry_agent = next((i for i, a in enumerate(team.agents) if a.id == flow.entry), None)
    declared = team.agents[entry_agent].input if entry_agent is not None else None
    if declared is not None and declared != flow.input:
        problems.append(
            Problem(
                f"entry agent {flow.entry!r} expects {declared} but the flow input is {flow.input}",
                "make `flow.input` and the entry agent's `input` the same schema",
                ("agents", entry_agent, "input"),  # type: ignore[arg-type]
            )
        )
    out_schema: dict[str, tuple[str, int]] = {}
    in_schema: dict[str, tuple[str, int]] = {}
    for k, edge in enumerate(flow.edges):
        loc = ("flow", "edges", k, "schema")
        first = out_schema.setdefault(edge.from_, (edge.schema_name, k))
        if first[0] != edge.schema_name:
            problems.append(
                Problem(
                    f"agent {edge.from_!r} hands on {edge.schema_name} here but {first[0]} on "
                    f"edge {first[1]}",
                    "an agent has one output schema: use the same schema on all edges leaving it",
                    loc,
                )
            )
        if edge.to == END:
            if edge.schema_name != flow.output:
                problems.append(
                    Problem(
                        f"terminal edge carries {edge.schema_name} but the flow output is "
                        f"{flow.output}",
                        "make the edge to END carry `flow.output`",
                        loc,
                    )
                )
            continue
        expected = inputs.get(edge.to)
        if expected is None:
            expected, first_k = in_schema.setdefault(edge.to, (edge.schema_name, k))
            where = f"edge {first_k}"
        else:
            where = "its `input`"
        if expected != edge.schema_name:
            problems.append(
                Problem(
                    f"edge to {edge.to!r} carries {edge.schema_name} but {edge.to!r} expects "
                    f"{expected} (from {where})",
                    f"carry {expected} on this edge, or change what {edge.to!r} expects",
                    loc,
                )
            )
    problems += _edge_order(team)
    return problems


def _edge_order(team: Team) -> list[Problem]:
    problems = []
    unconditional: dict[str, int] = {}
    for k, edge in enumerate(team.flow.edges):
        if edge.from_ in unconditional:
            problems.append(
                Problem(
                    f"edge {k} from {edge.from_!r} can never be taken: edge "
                    f"{unconditional[edge.from_]} has no `when` and matches first",
                    "put the edge without `when` last among the edges of this agent, and keep "
                    "only one",
                    ("flow", "edges", k),
                )
            )
        elif edge.when is None:
            unconditional[edge.from_] = k
    return problems


def _reachability(team: Team) -> list[Problem]:
    flow = team.flow
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(a.id for a in team.agents)
    graph.add_edges_from((e.from_, e.to) for e in flow.edges)
    for step in flow.parallel:
        graph.add_edges_from((step.from_, branch) for branch in step.to)
        graph.add_edges_from((branch, step.join) for branch in step.to)
    if flow.entry not in graph:
        return []
    reaches_end = END in nx.descendants(graph, flow.entry)
    # Work also reaches an agent by delegation, from its manager down.
    graph.add_edges_from(
        (a.reports_to, a.id)
        for a in team.agents
        if a.reports_to is not None and a.reports_to in graph
    )
    reachable = nx.descendants(graph, flow.entry) | {flow.entry}
    targets = {e.to for e in flow.edges} | {flow.entry}
    targets |= {b for s in flow.parallel for b in s.to} | {s.join for s in flow.parallel}
    fanning = {s.from_ for s in flow.parallel} | {b for s in flow.parallel for b in s.to}
    problems = _parallel(team)
    for i, agent in enumerate(team.agents):
        outgoing = team.edges_from(agent.id)
        if agent.id in fanning:
            continue  # checked with its parallel step
        if agent.id not in reachable:
            problems.append(
                Problem(
                    f"agent {agent.id!r} is unreachable from the entry {flow.entry!r}",
                    "add an edge that leads to it, make it report to a reachable agent, or "
                    "remove the agent",
                    ("agents", i, "id"),
                )
            )
        elif not outgoing and (agent.output is None or agent.reports_to is None):
            problems.append(
                Problem(
                    f"agent {agent.id!r} has no outgoing edge, so a run reaching it cannot end",
                    f"add an edge from {agent.id!r} to another agent or to END, or give it "
                    "`reports_to` and `output` to make it a worker its manager delegates to",
                    ("agents", i, "id"),
                )
            )
        elif outgoing and agent.output is not None and agent.output != outgoing[0].schema_name:
            problems.append(
                Problem(
                    f"agent {agent.id!r} declares output {agent.output} but its edges carry "
                    f"{outgoing[0].schema_name}",
                    "make `output` match its edges, or remove it",
                    ("agents", i, "output"),
                )
            )
        if agent.id not in targets and agent.input is None:
            problems.append(
                Problem(
                    f"agent {agent.id!r} receives work only by delegation but declares no input",
                    "declare `input: SchemaName` so delegated payloads can be checked",
                    ("agents", i, "id"),
                )
            )
    if not reaches_end:
        problems.append(
            Problem(
                "no path from the entry reaches END",
                "add a terminal edge (`to: END`)",
                ("flow", "edges"),
            )
        )
    return problems


def _parallel(team: Team) -> list[Problem]:
    """A parallel step's agents exist and fit: the fanning agent and the branches hand
    on nothing else, each branch declares its `output`, and every agent is in one step."""
    problems: list[Problem] = []
    agents = {a.id: a for a in team.agents}
    seen: dict[str, int] = {}
    for k, step in enumerate(team.flow.parallel):
        loc: tuple[str | int, ...] = ("flow", "parallel", k)
        for role, name in [("from", step.from_), ("join", step.join)] + [
            ("to", b) for b in step.to
        ]:
            if name not in agents:
                problems.append(
                    Problem(
                        f"parallel step {k} names unknown agent {name!r}",
                        f"use an agent id; {suggest(name, agents)}",
                        (*loc, role),
                    )
                )
        for name in (step.from_, *step.to):
            if name in seen:
                problems.append(
                    Problem(
                        f"agent {name!r} is in parallel step {seen[name]} and step {k}",
                        "an agent fans out, or is a branch, in one parallel step only",
                        loc,
                    )
                )
            seen[name] = k
            if any(e.from_ == name for e in team.flow.edges):
                problems.append(
                    Problem(
                        f"agent {name!r} of parallel step {k} also has edges",
                        "a fanning agent and its branches hand on through the step only: "
                        "remove their edges (the join agent has the edges that go on)",
                        loc,
                    )
                )
        for name in step.to:
            if name in agents and agents[name].output is None:
                problems.append(
                    Problem(
                        f"branch {name!r} of parallel step {k} declares no `output`",
                        "declare `output: SchemaName` on each branch agent",
                        (*loc, "to"),
                    )
                )
        if step.join in agents and agents[step.join].input is None:
            problems.append(
                Problem(
                    f"join agent {step.join!r} declares no `input`",
                    f"declare an input schema with one field per branch ({', '.join(step.to)})",
                    (*loc, "join"),
                )
            )
    return problems
