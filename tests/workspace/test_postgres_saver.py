"""PgSaver, the Postgres workspace's checkpointer: LangGraph's conformance suite for every
capability, hostile ids, tampered blobs, and atomic supersteps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from corral.workspace import open_workspace
from tests.workspace.postgres_cluster import Cluster
from tests.workspace.saver_checks import (
    HOSTILE,
    TAMPERS,
    LateWrites,
    check_hostile_data,
    check_tampered_blob,
    checkpoint,
)


def test_conformance_all_capabilities(postgres: Cluster) -> None:
    @checkpointer_test(name="PgSaver")
    async def pg_saver() -> AsyncIterator[Any]:
        with postgres.database() as url:
            workspace = open_workspace(url)
            yield workspace.saver
            workspace.close()

    report = asyncio.run(validate(pg_saver))
    report.print_report()
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert not failures, failures
    detected = {name for name, r in report.results.items() if r.detected}
    assert detected == {c.value for c in ALL_CAPABILITIES}
    assert report.conformance_level() == "FULL"
    assert sum(r.tests_passed for r in report.results.values()) > 50


def test_hostile_ids_namespaces_and_filters_are_only_data(postgres_url: str) -> None:
    workspace = open_workspace(postgres_url)
    check_hostile_data(workspace.saver, [*HOSTILE, "$1 %s {}"])  # psycopg's placeholders
    workspace.close()


@pytest.mark.parametrize("tamper", TAMPERS)
def test_tampered_blobs_are_refused_not_executed(
    postgres_url: str, tmp_path: Path, tamper: str
) -> None:
    workspace = open_workspace(postgres_url)

    def store(kind: str, blob: bytes) -> None:
        with psycopg.connect(postgres_url) as conn:
            conn.execute(
                "UPDATE cp_blobs SET type = %s, blob = %s WHERE thread_id = 'victim'", (kind, blob)
            )

    check_tampered_blob(workspace.saver, tamper, tmp_path / "pwned", store)
    workspace.close()


def test_a_superstep_commits_with_the_next_checkpoint(postgres_url: str) -> None:
    """The tasks' writes against the head checkpoint are not in the database until the
    next checkpoint commits, in the same transaction: a crash leaves one or the other."""
    workspace = open_workspace(postgres_url)
    saver = workspace.saver
    config: Any = {"configurable": {"thread_id": "run", "checkpoint_ns": ""}}
    head = saver.put(config, checkpoint({"v": 0}, {"v": 1}), {"step": 0}, {"v": 1})
    saver.put_writes(head, [("v", 1)], task_id="a")
    saver.put_writes(head, [("v", 2)], task_id="b")

    def stored_writes() -> int:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SELECT count(*) FROM cp_writes").fetchone()
        return int(row[0]) if row else -1

    assert stored_writes() == 0  # held
    found = saver.get_tuple(head)
    assert found is not None
    assert sorted(w[0] for w in found.pending_writes) == ["a", "b"]  # this process sees them
    saver.put(head, checkpoint({"v": 2}, {"v": 2}), {"step": 1}, {"v": 2})
    assert stored_writes() == 2  # committed with the next checkpoint
    saver.put_writes(head, [("__error__", "boom")], task_id="c")  # ends a step: at once
    assert stored_writes() == 3
    workspace.close()


def _stored_writes(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM cp_writes").fetchone()
    return int(row[0]) if row else -1


def test_writes_arriving_while_their_checkpoint_commits_are_held(postgres_url: str) -> None:
    """As ``CorralSaver`` (``test_saver_heads.py``): a checkpoint is the run's head from
    the start of its ``put``, so a fresh run's first writes, arriving while its input
    checkpoint commits, wait for the next checkpoint instead of a statement of their own."""
    workspace = open_workspace(postgres_url)
    saver = workspace.saver
    config: Any = {"configurable": {"thread_id": "run", "checkpoint_ns": ""}}
    first = checkpoint({"v": 0}, {"v": 1})
    query = saver.pool.query
    head: Any = {"configurable": {**config["configurable"], "checkpoint_id": first["id"]}}
    late = LateWrites(saver, head, [("v", 5)])
    saver.pool.query = late.around(query)  # type: ignore[method-assign]
    try:
        head = saver.put(config, first, {"step": -1}, {"v": 1})
    finally:
        saver.pool.query = query  # type: ignore[method-assign]
        late.join()
    assert late.waited == [False]
    assert _stored_writes(postgres_url) == 0  # held, not committed apart
    found = saver.get_tuple(head)
    assert found is not None
    assert [(w[0], w[2]) for w in found.pending_writes] == [("task-1", 5)]
    saver.put(head, checkpoint({"v": 5}, {"v": 2}), {"step": 0}, {"v": 2})
    assert _stored_writes(postgres_url) == 1  # committed with the next checkpoint
    workspace.close()


class _Lost:
    """A connection that is gone: any statement on it fails."""

    def __getattr__(self, name: str) -> Any:
        raise psycopg.OperationalError("connection lost")


def test_a_put_that_fails_gives_its_head_back_and_keeps_what_it_took(postgres_url: str) -> None:
    workspace = open_workspace(postgres_url)
    saver = workspace.saver
    config: Any = {"configurable": {"thread_id": "run", "checkpoint_ns": ""}}
    head = saver.put(config, checkpoint({"v": 0}, {"v": 1}), {"step": -1}, {"v": 1})
    saver.put_writes(head, [("v", 2)], task_id="a")  # a finished task: held
    query = saver.pool.query

    @contextmanager
    def broken() -> Iterator[Any]:
        with query():
            yield _Lost()

    saver.pool.query = broken  # type: ignore[method-assign]
    failed = checkpoint({"v": 1}, {"v": 2})
    with pytest.raises(psycopg.OperationalError, match="connection lost"):
        saver.put(head, failed, {"step": 0}, {"v": 2})
    saver.pool.query = query  # type: ignore[method-assign]
    assert (
        saver.get_tuple({"configurable": {**head["configurable"], "checkpoint_id": failed["id"]}})
        is None
    )
    # what the failed put took to commit is held again; writes against the head that
    # stands are held too
    saver.put_writes(head, [("v", 3)], task_id="b")
    assert _stored_writes(postgres_url) == 0
    found = saver.get_tuple(head)
    assert found is not None
    assert [(w[0], w[2]) for w in found.pending_writes] == [("a", 2), ("b", 3)]
    workspace.close()  # commits what it holds
    assert _stored_writes(postgres_url) == 2
