"""Teams as LangGraph graphs: state, building, the compiled ``App``, drawings."""

from corral.graphs._app import App, check_run_id, new_run_id
from corral.graphs._build import CompiledTeam, build_graph, inbound_schema
from corral.graphs._export import FORMATS, mimebundle, render, team_graph, to_dot, to_mermaid
from corral.graphs._result import RunResult, StepEvent
from corral.graphs._state import Handoff, TeamState, Usage

__all__ = [
    "FORMATS",
    "App",
    "CompiledTeam",
    "Handoff",
    "RunResult",
    "StepEvent",
    "TeamState",
    "Usage",
    "build_graph",
    "check_run_id",
    "inbound_schema",
    "mimebundle",
    "new_run_id",
    "render",
    "team_graph",
    "to_dot",
    "to_mermaid",
]
