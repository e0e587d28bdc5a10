"""Drawings of a team's graph, offline (no network renderer)."""

from __future__ import annotations

from corral.graphs._build import build_graph
from corral.manifest._team import Team


def to_mermaid(team: Team) -> str:
    """Mermaid source of the compiled graph: every agent and every typed, labelled edge."""
    return build_graph(team).get_graph().draw_mermaid()
