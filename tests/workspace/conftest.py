"""The workspace under test: one fixture, parametrized over every storage backend.

Protocol behaviour tests take ``workspace`` (and ``clock``) and run once per backend:
a SQLite file, and a fresh database on a throwaway Postgres cluster (started once per
session on a free loopback port, stopped at the end; see ``postgres_cluster``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import open_workspace
from corral.workspace import Workspace
from tests.workspace.postgres_cluster import Cluster, cluster

BACKENDS = ["sqlite", "postgres"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A Postgres cluster for the session."""
    with cluster() as running:
        yield running


@pytest.fixture
def postgres_url(postgres: Cluster) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    with postgres.database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def workspace(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Workspace]:
    """A fresh workspace on each backend, with the test's clock injected."""
    where = (
        str(tmp_path / "w.db")
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    opened = open_workspace(where, clock=clock)
    try:
        yield opened
    finally:
        opened.close()
