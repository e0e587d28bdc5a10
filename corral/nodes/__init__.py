"""What runs inside a node: agents, function nodes, delegation rounds, the flow node,
typed handoffs, and the services a node may use."""

from corral.manifest import validate
from corral.nodes._agent import AgentRunner
from corral.nodes._base import Call, Delegator, Inbound, Node, Runner, Work
from corral.nodes._delegation import Delegation, Subtask
from corral.nodes._flow import FlowNode
from corral.nodes._function import FunctionRunner
from corral.nodes._handoff import REVIEW
from corral.nodes._review import ReviewNode
from corral.nodes._round import Fanout, fanning_out, outcomes, round_graph
from corral.nodes._services import Services
from corral.nodes._state import (
    NO_USAGE,
    Handoff,
    ReviewRequest,
    TeamState,
    Usage,
    add_usage,
    guarded_state,
)
from corral.nodes._subgraph import GraphRunner

__all__ = [
    "NO_USAGE",
    "REVIEW",
    "AgentRunner",
    "Call",
    "Delegation",
    "Delegator",
    "Fanout",
    "FlowNode",
    "FunctionRunner",
    "GraphRunner",
    "Handoff",
    "Inbound",
    "Node",
    "ReviewNode",
    "ReviewRequest",
    "Runner",
    "Services",
    "Subtask",
    "TeamState",
    "Usage",
    "Work",
    "add_usage",
    "fanning_out",
    "guarded_state",
    "outcomes",
    "round_graph",
    "validate",
]
