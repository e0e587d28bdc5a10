"""A ``Picture`` written as Mermaid flowchart source.

Labels are plain SVG text (``htmlLabels: false``), never HTML in ``foreignObject``, so
the SVG that Mermaid makes keeps its words in converters and PDF pipelines. The
hand-drawn seed is fixed so the same team always gives the same SVG.
"""

from __future__ import annotations

import json
from typing import Any

from corral.graphs._picture import (
    AGENT_FILL,
    AGENT_STROKE,
    FLOW_COLOUR,
    HIERARCHY_COLOUR,
    KEY,
    LEGEND_FILL,
    MARKS,
    START,
    SUPERVISOR_COLOUR,
    TAKEN_COLOUR,
    VISITED_FILL,
    WORKER_FILL,
    Edge,
    Node,
    Picture,
)
from corral.manifest import END

FRONT: dict[str, Any] = {
    "htmlLabels": False,
    "flowchart": {"htmlLabels": False, "curve": "basis", "wrappingWidth": 260},
    "handDrawnSeed": 1,
    "themeVariables": {"edgeLabelBackground": "#ffffff"},
    "themeCSS": ".edgeLabel rect { opacity: 0.9; fill: #ffffff; }",
}
"""Mermaid's configuration, in the front matter of every source."""
CONFIG: dict[str, Any] = FRONT | {
    "themeVariables": {"edgeLabelBackground": "#ffffff", "fontFamily": "DejaVu Sans,sans-serif"}
}
"""The configuration SVGs are made with: the front matter's, and the font ``mermaidx``
measures text in (Mermaid drops a list of fonts from front matter)."""

RESERVED = {"end", "graph", "subgraph", "flowchart", "class", "classdef", "style", "default"}
CLASSES = {
    "supervisor": f"stroke:{SUPERVISOR_COLOUR},stroke-width:3px",
    "worker": f"fill:{WORKER_FILL}",
    "visited": f"fill:{VISITED_FILL},stroke:{TAKEN_COLOUR},stroke-width:2px",
    "visitedsupervisor": f"fill:{VISITED_FILL},stroke:{SUPERVISOR_COLOUR},stroke-width:3px",
}
TAKEN = f"stroke:{TAKEN_COLOUR},stroke-width:3.5px"
HIERARCHY = f"stroke:{HIERARCHY_COLOUR},stroke-width:1.5px"
LINKS = {"flow": "-->", "delegates": "-.->", "reports_to": "-.-"}
"""Flow edges are solid, delegation dashed with an arrow, hierarchy alone dotted without."""


def text(line: str) -> str:
    """One line of a label, with Mermaid's entity codes for the characters it parses."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        line = line.replace(char, code)
    return line


def node_id(node: str) -> str:
    """A Mermaid id for a node: START and END, and ids Mermaid reserves, are renamed.

    Agent ids start with a small letter, so the legend's ``Legend_`` ids are never one."""
    if node == START:
        return "__start__"
    if node == END:
        return "__end__"
    return f"agent_{node}" if node in RESERVED else node


def node_class(node: Node) -> str | None:
    """The class a node is drawn with."""
    if node.visited:
        return "visitedsupervisor" if node.supervisor else "visited"
    if node.supervisor:
        return "supervisor"
    return "worker" if node.off_flow else None


def box(node: Node) -> str:
    label = "<br/>".join(text(line) for line in node.lines)
    if node.kind == "agent":
        return f'{node_id(node.id)}["{label}"]'
    return f'{node_id(node.id)}(["{label}"])'


def arrow(edge: Edge) -> str:
    lines = [edge.label] if edge.label else []
    if edge.also:
        lines.append(MARKS[edge.also])
    label = "<br/>".join(text(line) for line in lines)
    shown = f'|"{label}"|' if label else ""
    return f"{node_id(edge.source)} {LINKS[edge.kind]}{shown} {node_id(edge.target)}"


def legend(picture: Picture, first: int) -> tuple[list[str], dict[str, list[int]]]:
    """The legend's subgraph, and the indexes of its links to style (``taken``,
    ``reports_to``). Only the kinds of link the picture draws are explained."""
    flow = ["flow: Schema [condition]"]
    for kind in ("delegates", "reports_to"):
        if picture.folded(kind):
            flow += KEY[f"+{kind}"]
    boxes = [
        'Legend_supervisor["supervisor<br/>role<br/>marks"]:::supervisor',
        'Legend_agent["agent"]',
    ]
    links = [("Legend_supervisor", "flow", flow, "Legend_agent")]
    for kind, target in (("delegates", "Legend_report"), ("reports_to", "Legend_member")):
        if picture.drawn(kind):
            boxes.append(f'{target}["report"]')
            links.append(("Legend_supervisor", kind, list(KEY[kind]), target))
    if picture.off_flow:
        boxes.append('Legend_worker["reached only by delegation"]:::worker')
    if picture.run:
        boxes += ['Legend_visited["ran"]:::visited', 'Legend_next["ran next"]:::visited']
        links.append(("Legend_visited", "taken", ["taken in this run"], "Legend_next"))
    styled: dict[str, list[int]] = {"taken": [], "reports_to": []}
    drawn = []
    for i, (source, kind, words, target) in enumerate(links):
        label = "<br/>".join(text(w) for w in words)
        drawn.append(f'{source} {LINKS.get(kind, "-->")}|"{label}"| {target}')
        if kind in styled:
            styled[kind].append(first + i)
    lines = ['\tsubgraph Legend ["Legend"]', "\t\tdirection LR"]
    lines += [f"\t\t{line}" for line in [*boxes, *drawn]]
    lines += ["\tend", f"\tstyle Legend fill:{LEGEND_FILL},stroke:#999999"]
    return lines, styled


def to_mermaid_source(picture: Picture) -> str:
    """The picture as Mermaid source, with its configuration in the front matter."""
    lines = [
        "---",
        f"config: {json.dumps(FRONT)}",
        "---",
        f"flowchart {picture.options.direction}",
    ]
    lines += [f"\t{box(node)}" for node in picture.nodes]
    lines += [f"\t{arrow(edge)}" for edge in picture.edges]
    taken = [i for i, edge in enumerate(picture.edges) if edge.taken]
    hierarchy = [i for i, edge in enumerate(picture.edges) if edge.kind == "reports_to"]
    if picture.options.legend:
        more, styled = legend(picture, len(picture.edges))
        lines += more
        taken += styled["taken"]
        hierarchy += styled["reports_to"]
    lines.append(f"\tclassDef default fill:{AGENT_FILL},stroke:{AGENT_STROKE},color:#222222")
    for name, style in CLASSES.items():
        lines.append(f"\tclassDef {name} {style}")
    for name in CLASSES:
        members = [node_id(n.id) for n in picture.nodes if node_class(n) == name]
        if members:
            lines.append(f"\tclass {','.join(members)} {name}")
    lines.append(f"\tlinkStyle default stroke:{FLOW_COLOUR},stroke-width:2px")
    if hierarchy:
        lines.append(f"\tlinkStyle {','.join(map(str, hierarchy))} {HIERARCHY}")
    if taken:
        lines.append(f"\tlinkStyle {','.join(map(str, taken))} {TAKEN}")
    return "\n".join(lines) + "\n"
