"""Corral: teams of LLM agents as compiled LangGraph state machines, with guardrails.

The public API. Everything else lives in private modules and may change.
"""

from corral.checkpoints import CheckpointError, CorralSaver, RunRecord, Workspace
from corral.errors import (
    CorralError,
    HandoffError,
    InputError,
    ManifestError,
    NodeError,
    Problem,
    RoutingError,
    RunError,
    UserError,
)
from corral.graphs import App, RunResult, StepEvent
from corral.guards import GuardTripped, Limits, NewTask, Task, TaskBoard
from corral.manifest import (
    END,
    AgentGuards,
    AgentSpec,
    BudgetSpec,
    CheckpointSpec,
    EdgeSpec,
    FieldSpec,
    FlowSpec,
    GuardSpec,
    ModelSpec,
    PermissionsSpec,
    RateSpec,
    SchemaSpec,
    Team,
    ToolSpec,
    WhenSpec,
    load_team,
    manifest_json_schema,
)
from corral.models import Reply, Script, ScriptedChatModel, ScriptedProviderError

__version__ = "0.1.0"

__all__ = [
    "END",
    "AgentGuards",
    "AgentSpec",
    "App",
    "BudgetSpec",
    "CheckpointError",
    "CheckpointSpec",
    "CorralError",
    "CorralSaver",
    "EdgeSpec",
    "FieldSpec",
    "FlowSpec",
    "GuardSpec",
    "GuardTripped",
    "HandoffError",
    "InputError",
    "Limits",
    "ManifestError",
    "ModelSpec",
    "NewTask",
    "NodeError",
    "PermissionsSpec",
    "Problem",
    "RateSpec",
    "Reply",
    "RoutingError",
    "RunError",
    "RunRecord",
    "RunResult",
    "SchemaSpec",
    "Script",
    "ScriptedChatModel",
    "ScriptedProviderError",
    "StepEvent",
    "Task",
    "TaskBoard",
    "Team",
    "ToolSpec",
    "UserError",
    "WhenSpec",
    "Workspace",
    "__version__",
    "load_team",
    "manifest_json_schema",
]
