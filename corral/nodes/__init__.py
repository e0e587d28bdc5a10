"""What runs inside a node: agents, function nodes, delegation, the flow node."""

from corral.nodes._agent import AgentRunner
from corral.nodes._base import Call, Inbound, Node, Work
from corral.nodes._delegation import Delegation, Hierarchy, Report, Runner, TaskNode
from corral.nodes._flow import FlowNode
from corral.nodes._function import FunctionRunner
from corral.nodes._handoff import REVIEW, NodePlan, edge_label, validate
from corral.nodes._review import ReviewNode

__all__ = [
    "REVIEW",
    "AgentRunner",
    "Call",
    "Delegation",
    "FlowNode",
    "FunctionRunner",
    "Hierarchy",
    "Inbound",
    "Node",
    "NodePlan",
    "Report",
    "ReviewNode",
    "Runner",
    "TaskNode",
    "Work",
    "edge_label",
    "validate",
]
