"""Teams as LangGraph graphs: the ``Team`` builder, the compiled ``App``, drawings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral._lazy import lazy_exports

if TYPE_CHECKING:
    from corral.graphs._app import App
    from corral.graphs._build import CompiledTeam, build_graph, draw_graph, wire
    from corral.graphs._export import mimebundle, render, team_graph, to_dot, to_mermaid
    from corral.graphs._formats import FORMATS
    from corral.graphs._held import held_by_workflow, on_workers_hint
    from corral.graphs._ids import check_run_id, db_path, new_run_id
    from corral.graphs._pinned import pinned_plan
    from corral.graphs._reading import read_trace
    from corral.graphs._result import RunResult, StepEvent
    from corral.graphs._team import Team, load_team

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._app": ("App",),
        "._formats": ("FORMATS",),
        "._held": ("held_by_workflow", "on_workers_hint"),
        "._build": (
            "CompiledTeam",
            "build_graph",
            "draw_graph",
            "wire",
        ),
        "._export": (
            "mimebundle",
            "render",
            "team_graph",
            "to_dot",
            "to_mermaid",
        ),
        "._ids": (
            "check_run_id",
            "db_path",
            "new_run_id",
        ),
        "._pinned": ("pinned_plan",),
        "._reading": ("read_trace",),
        "._result": (
            "RunResult",
            "StepEvent",
        ),
        "._team": (
            "Team",
            "load_team",
        ),
    },
)

__all__ = [
    "FORMATS",
    "App",
    "CompiledTeam",
    "RunResult",
    "StepEvent",
    "Team",
    "build_graph",
    "check_run_id",
    "db_path",
    "draw_graph",
    "held_by_workflow",
    "load_team",
    "mimebundle",
    "new_run_id",
    "on_workers_hint",
    "pinned_plan",
    "read_trace",
    "render",
    "team_graph",
    "to_dot",
    "to_mermaid",
    "wire",
]
