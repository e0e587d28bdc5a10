"""What runs inside a node: model-driven agents and plain function nodes."""

from corral.nodes._agent import AgentNode
from corral.nodes._base import Call, Node
from corral.nodes._function import FunctionNode
from corral.nodes._handoff import NodePlan, edge_label, validate

__all__ = ["AgentNode", "Call", "FunctionNode", "Node", "NodePlan", "edge_label", "validate"]
