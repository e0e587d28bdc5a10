"""``corral.server``'s public surface is pinned, and ``import corral`` does not need the
server extra (FastAPI is imported only by ``corral.server`` and ``corral serve``)."""

from __future__ import annotations

import subprocess
import sys

import corral.server


def test_the_server_surface_is_pinned() -> None:
    assert corral.server.__all__ == ["create_app", "read_api_keys"]


def test_import_corral_and_its_cli_without_fastapi() -> None:
    code = "import sys, corral, corral.cli; print('fastapi' in sys.modules)"
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert shown.stdout.strip() == "False"
