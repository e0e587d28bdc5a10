"""Drawings of a team's graph, offline (no network renderer)."""

from __future__ import annotations

from corral.graphs._build import build_graph
from corral.manifest._team import Team


def to_mermaid(team: Team) -> str:
    """Mermaid source: every agent, every typed flow edge (dotted, labelled with its
    schema and condition) and every reports-to line (thick ``delegates`` arrows)."""
    drawn = build_graph(team).get_graph().draw_mermaid()
    flow = {e.from_ for e in team.flow.edges} | {team.flow.entry}
    lines = [f"\t{a.id}({a.id}):::worker" for a in team.agents if a.id not in flow]
    lines += [f"\t{a.reports_to} ==>|delegates| {a.id};" for a in team.agents
              if a.reports_to is not None]
    if not lines:
        return drawn
    lines.append("\tclassDef worker fill:#fff7e0")
    cut = drawn.index("\tclassDef")
    return drawn[:cut] + "\n".join(lines) + "\n" + drawn[cut:]
