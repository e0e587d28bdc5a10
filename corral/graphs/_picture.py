"""What a drawing of a team shows, whatever it is written in: nodes, edges and legend.

One ``Picture`` is built from the plan (and a run's path), then written as Mermaid or
DOT. A reports-to link is drawn as ``delegates`` only when the supervisor may delegate
over it (``AgentPlan.delegates_to``); any other is hierarchy alone, ``reports_to``. A
link drawn beside a flow edge between the same two agents would join them twice, so it
is folded into that flow edge (``also`` names it); only a link with no flow edge is
drawn as an edge of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import networkx as nx

from corral.errors import InputError
from corral.manifest import END, TeamPlan

Direction = Literal["TB", "LR"]
DIRECTIONS: tuple[str, ...] = ("TB", "LR")
MAX_SCALE = 8.0
START = "START"
Link = Literal["delegates", "reports_to"]

FLOW_COLOUR = "#333333"
TAKEN_COLOUR = "#2e7d32"
VISITED_FILL = "#c8f7c5"
SUPERVISOR_COLOUR = "#7a3e00"
AGENT_FILL = "#f2f0ff"
WORKER_FILL = "#fff7e0"
AGENT_STROKE = "#9370db"
LEGEND_FILL = "#fbfbf2"
HIERARCHY_COLOUR = "#8a8a8a"
MARKS: dict[str, str] = {"delegates": "+ delegates", "reports_to": "+ reports to"}
"""What a flow edge that also stands for a reports-to link adds to its label."""
KEY: dict[str, tuple[str, ...]] = {
    "+delegates": ("+ delegates: supervisor", "delegates to agent"),
    "+reports_to": ("+ reports to: agent", "reports to supervisor"),
    "delegates": ("delegates: supervisor", "hands report subtasks"),
    "reports_to": ("reports to: hierarchy", "only, no delegation"),
}
"""The legend's words for each kind of link (``+``: folded into a flow edge)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DrawOptions:
    """How to draw: a run's path to highlight, size, direction and whether to add a legend.

    ``scale`` multiplies the size of an SVG or PNG (``None``: 1 for SVG, 2 for PNG).
    """

    highlight: tuple[str, ...] = ()
    scale: float | None = None
    direction: str = "TB"
    legend: bool = True

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise InputError(
                f"direction {self.direction!r} is not known; use TB (top to bottom) "
                "or LR (left to right)",
                field="direction",
            )
        if self.scale is not None and not 0 < self.scale <= MAX_SCALE:
            raise InputError(
                f"scale {self.scale:g} is out of range; use a number above 0 and at most "
                f"{MAX_SCALE:g}",
                field="scale",
            )

    def size(self, fmt: str) -> float:
        """The scale in force for ``fmt``."""
        if self.scale is not None:
            return self.scale
        return 2.0 if fmt == "png" else 1.0


@dataclass(frozen=True, slots=True)
class Node:
    """One box: an agent, START or END."""

    id: str
    kind: Literal["start", "end", "agent"]
    lines: tuple[str, ...]
    supervisor: bool = False
    off_flow: bool = False
    """Reached only by delegation, never by a flow edge."""
    visited: bool = False


@dataclass(frozen=True, slots=True)
class Edge:
    """One arrow: a flow edge (possibly also a reports-to link) or a reports-to link only.

    A reports-to link is ``delegates`` when the supervisor's ``delegate`` tool offers the
    report, and ``reports_to`` (hierarchy only) when the flow feeds it."""

    source: str
    target: str
    label: str
    kind: Literal["flow", "delegates", "reports_to"]
    also: Link | None = None
    """For a flow edge: the reports-to link it also stands for, if any."""
    taken: bool = False


@dataclass(frozen=True, slots=True)
class Picture:
    """Everything a drawing shows, in a fixed order (so drawings are reproducible)."""

    name: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    options: DrawOptions

    @property
    def run(self) -> bool:
        """True when the picture shows a run's path."""
        return any(n.visited for n in self.nodes)

    @property
    def off_flow(self) -> bool:
        """True when some agent is reached only by delegation."""
        return any(n.off_flow for n in self.nodes)

    def drawn(self, kind: str) -> bool:
        """True when some edge of its own is of ``kind`` (flow, delegates, reports_to)."""
        return any(e.kind == kind for e in self.edges)

    def folded(self, kind: Link) -> bool:
        """True when some flow edge also stands for a reports-to link of ``kind``."""
        return any(e.also == kind for e in self.edges)


def taken_edges(graph: nx.MultiDiGraph[str], path: Sequence[str]) -> set[tuple[str, str]]:
    """The flow edges a run with ``path`` took: between agents that ran one after the
    other, into the first and out of the last, and every branch of a parallel step run."""
    if not path:
        return set()
    steps = [START, *path, END]
    pairs = set(itertools.pairwise(steps))
    ran = set(path)
    for a, b, data in graph.edges(data=True):
        if data["kind"] == "flow" and a in ran and b in ran and data.get("step"):
            pairs.add((a, b))
    flow = {(a, b) for a, b, data in graph.edges(data=True) if data["kind"] == "flow"}
    return pairs & flow


def picture(team: TeamPlan, graph: nx.MultiDiGraph[str], options: DrawOptions) -> Picture:
    """The picture of ``team`` (its graph from ``team_graph``) drawn with ``options``."""
    visited = set(options.highlight) & set(team.agents)
    nodes = [Node(START, "start", ("START",))]
    for agent in team.agents.values():
        lines = [agent.id]
        if agent.spec.role and agent.spec.role != agent.id:
            lines.append(agent.spec.role)
        if agent.marks:
            lines.append(" · ".join(agent.marks))
        nodes.append(
            Node(
                agent.id,
                "agent",
                tuple(lines),
                supervisor=agent.supervisor,
                off_flow=not agent.in_flow,
                visited=agent.id in visited,
            )
        )
    nodes.append(Node(END, "end", ("END",)))
    links: dict[tuple[str, str], Link] = {
        (a, b): d["kind"] for a, b, d in graph.edges(data=True) if d["kind"] != "flow"
    }
    taken = taken_edges(graph, options.highlight)
    edges = [
        Edge(a, b, str(d["label"]), "flow", links.get((a, b)), (a, b) in taken)
        for a, b, d in graph.edges(data=True)
        if d["kind"] == "flow"
    ]
    flow = {(e.source, e.target) for e in edges}
    edges += [
        Edge(a, b, str(d["label"]), d["kind"])
        for a, b, d in graph.edges(data=True)
        if d["kind"] != "flow" and (a, b) not in flow
    ]
    return Picture(team.name, tuple(nodes), tuple(edges), options)
