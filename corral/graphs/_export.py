"""Drawings and exports of a team, all offline: Mermaid, DOT, SVG, PNG, node-link JSON, GraphML.

Every agent is drawn with its marks (supervisor, budget, fallback, review, tools); flow
edges are labelled with their schema and condition; reports-to lines are drawn
distinctly as ``delegates``. A finished run can be drawn with its path highlighted.
SVG and PNG come from ``mermaidx`` (an embedded JavaScript engine, no browser, no
network); graph data from networkx.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import networkx as nx

from corral.graphs._build import draw_graph
from corral.manifest import END, TeamPlan
from corral.nodes import edge_label

Format = Literal["mermaid", "dot", "svg", "png", "json", "graphml"]
FORMATS: tuple[str, ...] = ("mermaid", "dot", "svg", "png", "json", "graphml")


def team_graph(team: TeamPlan) -> nx.MultiDiGraph[str]:
    """The team as a networkx graph: agents and START/END, flow and delegates edges."""
    graph: nx.MultiDiGraph[str] = nx.MultiDiGraph(name=team.name)
    graph.add_node("START", kind="start")
    graph.add_node(END, kind="end")
    for agent in team.agents.values():
        graph.add_node(
            agent.id,
            kind=agent.spec.kind,
            role=agent.spec.role,
            team=agent.spec.team or "",
            marks=", ".join(agent.marks),
        )
    graph.add_edge("START", team.entry, kind="flow", schema=team.input_name, label="")
    for edge in team.edges:
        graph.add_edge(
            edge.from_,
            edge.to,
            kind="flow",
            schema=edge.schema_name,
            label=edge_label(edge),
            review=edge.review,
        )
    for agent in team.agents.values():
        step = dict.fromkeys(agent.fans_out, "parallel") | (
            {agent.joins: "joined"} if agent.joins else {}
        )
        for target, how in step.items():
            label = f"{agent.out_name} ({how})"
            graph.add_edge(agent.id, target, kind="flow", schema=agent.out_name, label=label)
    for agent in team.agents.values():
        if agent.spec.reports_to is not None:
            graph.add_edge(
                agent.spec.reports_to, agent.id, kind="delegates", schema="", label="delegates"
            )
    return graph


def to_mermaid(team: TeamPlan, highlight: Sequence[str] = ()) -> str:
    """Mermaid source of the compiled graph, with marks, delegates lines and a run's path."""
    drawn = draw_graph(team).get_graph().draw_mermaid()
    agents = [a.spec for a in team.agents.values()]
    lines = [f"\t{a.id}({a.id}):::worker" for a in team.agents.values() if not a.in_flow]
    lines += [
        f"\t{a.reports_to} ==>|delegates| {a.id};" for a in agents if a.reports_to is not None
    ]
    for agent in team.agents.values():
        extra = agent.marks
        if extra:
            lines.append(f'\t{agent.id}["{agent.id}<br/><small>{" · ".join(extra)}</small>"]')
    supervisors = [a.id for a in team.agents.values() if a.supervisor]
    lines.append("\tclassDef worker fill:#fff7e0")
    lines.append("\tclassDef supervisor stroke:#7a3e00,stroke-width:3px")
    if supervisors:
        lines.append(f"\tclass {','.join(supervisors)} supervisor")
    visited = [a for a in dict.fromkeys(highlight) if a in team.agents]
    if visited:
        lines.append("\tclassDef visited fill:#c8f7c5,stroke:#2e7d32,stroke-width:2px")
        lines.append(f"\tclass {','.join(visited)} visited")
    cut = drawn.index("\tclassDef")
    return drawn[:cut] + "\n".join(lines) + "\n" + drawn[cut:]


def to_dot(team: TeamPlan, highlight: Sequence[str] = ()) -> str:
    """Graphviz DOT: flow edges dashed with labels, delegates edges bold."""
    graph = team_graph(team)
    out = [f"digraph {json.dumps(team.name)} {{", "  rankdir=TB;", "  node [shape=box];"]
    for node, data in graph.nodes(data=True):
        label = node if not data.get("marks") else f"{node}\\n{data['marks']}"
        style = ', style=filled, fillcolor="#c8f7c5"' if node in highlight else ""
        shape = ", shape=oval" if data["kind"] in ("start", "end") else ""
        out.append(f"  {json.dumps(node)} [label={json.dumps(label)}{shape}{style}];")
    for a, b, data in graph.edges(data=True):
        style = "bold" if data["kind"] == "delegates" else "dashed"
        out.append(
            f"  {json.dumps(a)} -> {json.dumps(b)} "
            f"[label={json.dumps(data['label'])}, style={style}];"
        )
    out.append("}")
    return "\n".join(out) + "\n"


def render(team: TeamPlan, fmt: str, highlight: Sequence[str] = ()) -> str | bytes:
    """The team drawn in ``fmt`` (text for text formats, bytes for PNG)."""
    if fmt == "mermaid":
        return to_mermaid(team, highlight)
    if fmt == "dot":
        return to_dot(team, highlight)
    if fmt == "json":
        data = nx.node_link_data(team_graph(team), edges="edges")
        return json.dumps(data, indent=2, default=str)
    if fmt == "graphml":
        return "\n".join(nx.generate_graphml(team_graph(team))) + "\n"
    if fmt in ("svg", "png"):
        import mermaidx  # imported on use: it starts a JavaScript engine

        diagram = mermaidx.render(to_mermaid(team, highlight))
        return str(diagram.svg()) if fmt == "svg" else bytes(diagram.png())
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def mimebundle(team: TeamPlan) -> dict[str, Any]:
    """What a notebook shows for a team: the SVG drawing and its Mermaid source."""
    return {
        "image/svg+xml": render(team, "svg"),
        "text/vnd.mermaid": to_mermaid(team),
        "text/plain": f"Team {team.name!r}: {len(team.agents)} agents",
    }
