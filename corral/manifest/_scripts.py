"""Script files for the scripted model, read with the manifest's safe YAML loader."""

from __future__ import annotations

from pathlib import Path

from corral.manifest._yaml import load_yaml, validate_located
from corral.models import Script


def load_script(path: Path) -> Script:
    """Load and validate a script file; ``ManifestError`` with ``file:line`` on mistakes."""
    return validate_located(Script, load_yaml(path))
