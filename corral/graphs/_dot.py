"""A ``Picture`` written as Graphviz DOT: the same boxes, arrows and legend as Mermaid's."""

from __future__ import annotations

from corral.graphs._picture import (
    AGENT_FILL,
    AGENT_STROKE,
    FLOW_COLOUR,
    HIERARCHY_COLOUR,
    KEY,
    LEGEND_FILL,
    MARKS,
    SUPERVISOR_COLOUR,
    TAKEN_COLOUR,
    VISITED_FILL,
    WORKER_FILL,
    Edge,
    Node,
    Picture,
)

FONT = "DejaVu Sans"
STYLES: dict[str, dict[str, str]] = {
    "flow": {},
    "delegates": {"style": "dashed"},
    "reports_to": {"style": "dotted", "arrowhead": "none", "color": f'"{HIERARCHY_COLOUR}"'},
}
"""Flow edges are solid, delegation dashed with an arrow, hierarchy alone dotted without."""


def quote(value: str) -> str:
    """A DOT quoted string of ``value``: backslashes and quotes escaped, so only the
    ``\\n`` this module writes between a label's lines is a line break for Graphviz."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def label(lines: list[str] | tuple[str, ...]) -> str:
    """A multi-line label: each line quoted, joined by Graphviz's centred line break."""
    return quote("\0".join(lines)).replace("\0", "\\n")


def attrs(**values: str) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in values.items()) + "]"


def box(node: Node) -> dict[str, str]:
    """A node's attributes: supervisors outlined, visited nodes filled (both can hold)."""
    found = {"label": label(node.lines)}
    if node.kind != "agent":
        found["shape"] = "oval"
    if node.off_flow:
        found["fillcolor"] = quote(WORKER_FILL)
    if node.visited:
        found |= {"fillcolor": quote(VISITED_FILL), "color": quote(TAKEN_COLOUR), "penwidth": "2"}
    if node.supervisor:
        found |= {"color": quote(SUPERVISOR_COLOUR), "penwidth": "3"}
    return found


def arrow(edge: Edge) -> dict[str, str]:
    lines = [edge.label] if edge.label else []
    if edge.also:
        lines.append(MARKS[edge.also])
    found = {"label": label(lines)} if lines else {}
    found |= STYLES[edge.kind]
    if edge.taken:
        found |= {"color": quote(TAKEN_COLOUR), "penwidth": "3.5"}
    return found


def legend(picture: Picture) -> list[str]:
    """The legend, a cluster of sample boxes and arrows (ids no agent can have)."""
    outlined = {"color": quote(SUPERVISOR_COLOUR), "penwidth": "3"}
    visited = {"fillcolor": quote(VISITED_FILL), "color": quote(TAKEN_COLOUR)}
    boxes = {
        "Legend_supervisor": {"label": label(["supervisor", "role", "marks"]), **outlined},
        "Legend_agent": {"label": quote("agent")},
    }
    flow = ["flow: Schema [condition]"]
    for kind in ("delegates", "reports_to"):
        if picture.folded(kind):
            flow += KEY[f"+{kind}"]
    arrows = [("Legend_supervisor", "Legend_agent", {"label": label(flow)})]
    for kind, target in (("delegates", "Legend_report"), ("reports_to", "Legend_member")):
        if picture.drawn(kind):
            boxes[target] = {"label": quote("report")}
            arrows.append(("Legend_supervisor", target, {"label": label(KEY[kind])} | STYLES[kind]))
    if picture.off_flow:
        boxes["Legend_worker"] = {
            "label": quote("reached only by delegation"),
            "fillcolor": quote(WORKER_FILL),
        }
    if picture.run:
        boxes["Legend_ran"] = {"label": quote("ran"), **visited}
        boxes["Legend_next"] = {"label": quote("ran next"), **visited}
        taken = {"label": quote("taken in this run"), "color": quote(TAKEN_COLOUR)}
        arrows.append(("Legend_ran", "Legend_next", taken | {"penwidth": "3.5"}))
    style = f'label="Legend"; style=filled; fillcolor={quote(LEGEND_FILL)}; color="#999999";'
    lines = ["  subgraph cluster_legend {", f"    {style}"]
    lines += [f"    {name} {attrs(**found)};" for name, found in boxes.items()]
    lines += [f"    {a} -> {b} {attrs(**found)};" for a, b, found in arrows]
    return [*lines, "  }"]


def to_dot_source(picture: Picture) -> str:
    """The picture as Graphviz DOT."""
    out = [
        f"digraph {quote(picture.name)} {{",
        f"  rankdir={picture.options.direction};",
        f"  graph [fontname={quote(FONT)}];",
        f'  node [shape=box, style="rounded,filled", fillcolor={quote(AGENT_FILL)}, '
        f"color={quote(AGENT_STROKE)}, fontname={quote(FONT)}];",
        f"  edge [color={quote(FLOW_COLOUR)}, penwidth=1.5, fontname={quote(FONT)}, fontsize=11];",
    ]
    for node in picture.nodes:
        out.append(f"  {quote(node.id)} {attrs(**box(node))};")
    for edge in picture.edges:
        found = arrow(edge)
        shown = f" {attrs(**found)}" if found else ""
        out.append(f"  {quote(edge.source)} -> {quote(edge.target)}{shown};")
    if picture.options.legend:
        out += legend(picture)
    out.append("}")
    return "\n".join(out) + "\n"
