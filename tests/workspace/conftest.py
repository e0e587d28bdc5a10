"""The workspace under test: one fixture, parametrized over every storage backend.

Protocol behaviour tests take ``workspace`` (and ``clock``) and run once per backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import open_workspace
from corral.workspace import SqliteWorkspace

BACKENDS = ["sqlite"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=BACKENDS)
def workspace(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> Iterator[SqliteWorkspace]:
    """A fresh workspace on each backend, with the test's clock injected."""
    assert request.param == "sqlite"
    opened = open_workspace(tmp_path / "w.db", clock=clock)
    try:
        yield opened
    finally:
        opened.close()
