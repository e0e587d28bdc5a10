"""Drawings and exports of a team, all offline: Mermaid, DOT, SVG, PNG, node-link JSON, GraphML.

Every agent is drawn with its role and marks (supervisor, budget, fallback, review,
tools); flow edges are solid and labelled with their schema and condition. A reports-to
link is ``delegates`` when the supervisor may delegate over it (the report gets work by
delegation alone) and ``reports_to`` otherwise; either is folded into a flow edge that
joins the same two agents (``_picture.py``). A run's path is drawn with its agents and
the edges it took. SVG and PNG come from Mermaid in ``mermaidx`` (an embedded JavaScript
engine, no browser, no network, no system package), with every label as SVG text; graph
data from networkx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

import networkx as nx

from corral.errors import InputError
from corral.graphs._dot import to_dot_source
from corral.graphs._formats import FORMATS
from corral.graphs._mermaid import CONFIG, to_mermaid_source
from corral.graphs._picture import START, DrawOptions, Picture, picture
from corral.manifest import END, TeamPlan

Format = Literal["mermaid", "dot", "svg", "png", "json", "graphml"]
SVG_ROOT = re.compile(r'<svg\b[^>]*?viewBox="(?P<box>[^"]+)"[^>]*>')


def team_graph(team: TeamPlan) -> nx.MultiDiGraph[str]:
    """The team as a networkx graph: agents and START/END, and ``flow``, ``delegates`` and
    ``reports_to`` edges (its ``kind``): a reports-to link is ``delegates`` only when the
    supervisor's ``delegate`` tool offers that report (``AgentPlan.delegates_to``)."""
    graph: nx.MultiDiGraph[str] = nx.MultiDiGraph(name=team.name)
    graph.add_node(START, kind="start")
    graph.add_node(END, kind="end")
    for agent in team.agents.values():
        graph.add_node(
            agent.id,
            kind=agent.spec.kind,
            role=agent.spec.role,
            team=agent.spec.team or "",
            marks=", ".join(agent.marks),
        )
    graph.add_edge(START, team.entry, kind="flow", schema=team.input_name, label=team.input_name)
    for edge in team.edges:
        graph.add_edge(
            edge.from_,
            edge.to,
            kind="flow",
            schema=edge.schema_name,
            label=edge.label,
            review=bool(edge.review),
        )
    for agent in team.agents.values():
        step = dict.fromkeys(agent.fans_out, "parallel") | (
            {agent.joins: "joined"} if agent.joins else {}
        )
        for target, how in step.items():
            label = f"{agent.out_name} ({how})"
            graph.add_edge(
                agent.id, target, kind="flow", schema=agent.out_name, label=label, step=how
            )
    for agent in team.agents.values():
        boss = agent.spec.reports_to
        if boss is not None:
            offered = {r.id for r in team.agents[boss].delegates_to}
            kind = "delegates" if agent.id in offered else "reports_to"
            graph.add_edge(boss, agent.id, kind=kind, schema="", label=kind.replace("_", " "))
    return graph


def draw_picture(team: TeamPlan, options: DrawOptions) -> Picture:
    """What a drawing of ``team`` with ``options`` shows."""
    return picture(team, team_graph(team), options)


def to_mermaid(team: TeamPlan, highlight: Sequence[str] = (), **options: Any) -> str:
    """Mermaid source: agents with their roles and marks, flow, delegates and reports-to
    edges, and a run's path (the agents that ran and the edges taken), with a legend."""
    return to_mermaid_source(draw_picture(team, DrawOptions(highlight=tuple(highlight), **options)))


def to_dot(team: TeamPlan, highlight: Sequence[str] = (), **options: Any) -> str:
    """Graphviz DOT of the same drawing as ``to_mermaid``."""
    return to_dot_source(draw_picture(team, DrawOptions(highlight=tuple(highlight), **options)))


def to_image(team: TeamPlan, fmt: str, options: DrawOptions) -> str | bytes:
    """SVG (text) or PNG (bytes) drawn by Mermaid in ``mermaidx``'s embedded engine.

    Every label is SVG ``<text>``; the SVG's width and height are its natural size times
    the scale, and the PNG's pixels are too.
    """
    import mermaidx  # imported on use: it starts a JavaScript engine

    drawn = mermaidx.render(to_mermaid_source(draw_picture(team, options)), config=CONFIG)
    svg = sized(str(drawn.svg()), options.size(fmt))
    return svg if fmt == "svg" else bytes(mermaidx.svg_to_png(svg, background="#ffffff"))


def sized(svg: str, scale: float) -> str:
    """``svg`` with a fixed width and height (its viewBox times ``scale``) for documents,
    and its spaces kept: Mermaid starts a word's ``<tspan>`` with the space before it."""
    root = SVG_ROOT.search(svg)
    if root is None:  # pragma: no cover - Mermaid always writes a viewBox
        return svg
    width, height = (float(v) * scale for v in root["box"].split()[2:])
    head = re.sub(r'\swidth="[^"]*"', "", root[0], count=1)
    head = re.sub(r"max-width:\s*[0-9.]+px;\s*", "", head, count=1)
    size = f'width="{width:.2f}" height="{height:.2f}" xml:space="preserve"'
    head = head.replace("<svg ", f"<svg {size} ", 1)
    return svg[: root.start()] + head + svg[root.end() :]


def render(
    team: TeamPlan,
    fmt: str,
    highlight: Sequence[str] = (),
    *,
    scale: float | None = None,
    direction: str = "TB",
    legend: bool = True,
) -> str | bytes:
    """The team drawn in ``fmt`` (text for text formats, bytes for PNG).

    ``highlight`` is a run's path: its agents and the edges it took are drawn green.
    ``scale`` sizes SVG and PNG (default 1 for SVG, 2 for PNG); ``direction`` is ``TB``
    or ``LR``; ``legend`` adds a key to the drawing (Mermaid, DOT, SVG, PNG).

    Raises:
        InputError: an unknown format, direction, or a scale out of range.
    """
    options = DrawOptions(
        highlight=tuple(highlight), scale=scale, direction=direction, legend=legend
    )
    if fmt == "mermaid":
        return to_mermaid_source(draw_picture(team, options))
    if fmt == "dot":
        return to_dot_source(draw_picture(team, options))
    if fmt == "json":
        data = nx.node_link_data(team_graph(team), edges="edges")
        return json.dumps(data, indent=2, default=str)
    if fmt == "graphml":
        return "\n".join(nx.generate_graphml(team_graph(team))) + "\n"
    if fmt in ("svg", "png"):
        return to_image(team, fmt, options)
    raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="format")


def mimebundle(team: TeamPlan) -> dict[str, Any]:
    """What a notebook shows for a team: the SVG drawing and its Mermaid source."""
    return {
        "image/svg+xml": render(team, "svg"),
        "text/vnd.mermaid": render(team, "mermaid"),
        "text/plain": f"Team {team.name!r}: {len(team.agents)} agents",
    }
