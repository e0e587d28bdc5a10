"""Script files for the scripted model, read with the manifest's safe YAML loader."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from corral.errors import ManifestError, Problem, suggest
from corral.manifest._yaml import load_yaml, validate_located
from corral.models import Script


def load_script(path: Path, agents: Collection[str] | None = None) -> Script:
    """Load and validate a script file; ``ManifestError`` at the script's ``file:line`` on
    mistakes, including (given the team's ``agents``) replies for an agent not in the team."""
    located = load_yaml(path)
    script = validate_located(Script, located)
    unknown = [
        Problem(
            f"the script gives replies to agent {name!r}, which is not in the team",
            f"use an agent id of the team; {suggest(name, agents)}",
            ("agents", name),
        )
        for name in script.agents
        if agents is not None and name not in agents
    ]
    if unknown:
        raise ManifestError(located.locate(unknown))
    return script
