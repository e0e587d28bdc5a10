"""Team definitions: YAML or Python to a validated, resolved ``Team``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corral.manifest._salvage import salvage_problems
from corral.manifest._spec import (
    END,
    AgentGuards,
    AgentSpec,
    BreakerSpec,
    BudgetSpec,
    CheckpointSpec,
    EdgeSpec,
    FallbackSpec,
    FieldSpec,
    FlowSpec,
    GuardSpec,
    ModelSpec,
    PermissionsSpec,
    RateSpec,
    RetrySpec,
    SchemaSpec,
    ToolSpec,
    WhenSpec,
)
from corral.manifest._team import Team
from corral.manifest._yaml import load_yaml, validate_located


def load_team(path: str | Path) -> Team:
    """Load, validate and resolve a team file.

    Raises:
        ManifestError: listing every problem found, each with ``file:line`` and a fix.
    """
    source = Path(path)
    return validate_located(
        Team,
        load_yaml(source),
        source=source.resolve(),
        more=lambda data, found: salvage_problems(Team, data, found),
    )


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of a team file, for editors (``yaml-language-server``)."""
    schema = Team.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "Corral team",
    }


__all__ = [
    "END",
    "AgentGuards",
    "AgentSpec",
    "BreakerSpec",
    "BudgetSpec",
    "CheckpointSpec",
    "EdgeSpec",
    "FallbackSpec",
    "FieldSpec",
    "FlowSpec",
    "GuardSpec",
    "ModelSpec",
    "PermissionsSpec",
    "RateSpec",
    "RetrySpec",
    "SchemaSpec",
    "Team",
    "ToolSpec",
    "WhenSpec",
    "load_team",
    "manifest_json_schema",
]
