"""Team definitions: YAML or Python -> a frozen ``TeamSpec`` -> a compiled ``TeamPlan``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from corral.manifest._compile import inbound_schema
from corral.manifest._diff import Change, diff_definitions
from corral.manifest._fields import TeamFields
from corral.manifest._payloads import error_lines, typed, validate
from corral.manifest._plan import AgentPlan, ModelPlan, ReportPlan, TeamPlan, ToolPlan, Who
from corral.manifest._policies import (
    AgentGuards,
    BreakerSpec,
    BudgetSpec,
    FallbackSpec,
    GuardSpec,
    PermissionsSpec,
    Policy,
    RateSpec,
    RetrySpec,
    ReviewPolicy,
    TeamBudgetSpec,
)
from corral.manifest._salvage import salvage_problems
from corral.manifest._scripts import load_script
from corral.manifest._spec import (
    AgentSpec,
    CheckpointSpec,
    ContextSpec,
    EdgeSpec,
    FieldSpec,
    FlowSpec,
    ModelSpec,
    ParallelSpec,
    PriceSpec,
    SchemaSpec,
    ToolSpec,
    TraceSpec,
    WhenSpec,
)
from corral.manifest._team import TeamSpec
from corral.manifest._types import END
from corral.manifest._yaml import Located, load_yaml, validate_located

T = TypeVar("T", bound=TeamSpec)


def load_team(path: str | Path, cls: type[T] = TeamSpec) -> T:  # type: ignore[assignment]
    """Load, validate and resolve a team file into ``cls`` (a ``TeamSpec`` or subclass).

    Raises:
        ManifestError: listing every problem found, each with ``file:line`` and a fix.
    """
    source = Path(path)
    located = load_yaml(source)
    team = validate_located(
        cls,
        located,
        source=source.resolve(),
        more=lambda data, found: salvage_problems(cls, data, found),
    )
    team._lines = Located(located.file, None, located.lines)
    return team


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of a team file, for editors (``yaml-language-server``)."""
    schema = TeamSpec.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "Corral team",
    }


__all__ = [
    "END",
    "AgentGuards",
    "AgentPlan",
    "AgentSpec",
    "BreakerSpec",
    "BudgetSpec",
    "Change",
    "CheckpointSpec",
    "ContextSpec",
    "EdgeSpec",
    "FallbackSpec",
    "FieldSpec",
    "FlowSpec",
    "GuardSpec",
    "ModelPlan",
    "ModelSpec",
    "ParallelSpec",
    "PermissionsSpec",
    "Policy",
    "PriceSpec",
    "RateSpec",
    "ReportPlan",
    "RetrySpec",
    "ReviewPolicy",
    "SchemaSpec",
    "TeamBudgetSpec",
    "TeamFields",
    "TeamPlan",
    "TeamSpec",
    "ToolPlan",
    "ToolSpec",
    "TraceSpec",
    "WhenSpec",
    "Who",
    "diff_definitions",
    "error_lines",
    "inbound_schema",
    "load_script",
    "load_team",
    "manifest_json_schema",
    "typed",
    "validate",
]
