"""PgSaver, the Postgres workspace's checkpointer: LangGraph's conformance suite for every
capability, hostile ids, tampered blobs, and atomic supersteps."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator
from typing import Any

import ormsgpack
import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from corral import CheckpointError
from corral.workspace import open_workspace
from tests.workspace.postgres_cluster import Cluster

HOSTILE = ["') OR 1=1--", "a'b\"c", "日本語🙂" * 50, "t" * 10_000, "%_*", "$1 %s {}", ""]


def checkpoint(values: dict[str, Any], versions: dict[str, int]) -> Any:
    cp = empty_checkpoint()
    cp["channel_values"] = values
    cp["channel_versions"] = versions
    return cp


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
    saver = workspace.saver
    bystander: Any = {"configurable": {"thread_id": "bystander", "checkpoint_ns": ""}}
    saver.put(bystander, checkpoint({"v": 0}, {"v": 1}), {"who": "bystander"}, {"v": 1})
    for i, hostile in enumerate(HOSTILE):
        config: Any = {"configurable": {"thread_id": hostile or "empty", "checkpoint_ns": hostile}}
        stored = saver.put(
            config,
            checkpoint({"v": hostile}, {"v": 1}),
            {hostile or "k": hostile, "i": i},
            {"v": 1},
        )
        saver.put_writes(stored, [("v", hostile)], task_id=hostile or "task")
        found = saver.get_tuple(stored)
        assert found is not None
        assert found.checkpoint["channel_values"] == {"v": hostile}
        assert found.pending_writes == [(hostile or "task", "v", hostile)]
        filtered = list(saver.list(None, filter={hostile or "k": hostile}))
        assert [t.metadata["i"] for t in filtered] == [i]
    assert len(list(saver.list(None))) == len(HOSTILE) + 1
    saver.delete_thread("') OR 1=1--")
    assert saver.get_tuple(bystander) is not None
    assert len(list(saver.list(None))) == len(HOSTILE)
    workspace.close()


class _Boom:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> Any:
        import os

        return (os.system, (self.command,))


@pytest.mark.parametrize("tamper", ["pickle", "ext", "garbage"])
def test_tampered_blobs_are_refused_not_executed(
    postgres_url: str, tmp_path: Any, tamper: str
) -> None:
    workspace = open_workspace(postgres_url)
    config: Any = {"configurable": {"thread_id": "victim", "checkpoint_ns": ""}}
    stored = workspace.saver.put(config, checkpoint({"v": "ok"}, {"v": 1}), {}, {"v": 1})
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    blob, kind = {
        "pickle": (pickle.dumps(_Boom(command)), "pickle"),
        "ext": (
            ormsgpack.packb(ormsgpack.Ext(1, ormsgpack.packb(["os", "system", [command]]))),
            "msgpack",
        ),
        "garbage": (b"\xc1\xff\x00 not msgpack", "msgpack"),
    }[tamper]
    with psycopg.connect(postgres_url) as conn:
        conn.execute(
            "UPDATE cp_blobs SET type = %s, blob = %s WHERE thread_id = 'victim'", (kind, blob)
        )
    with pytest.raises(CheckpointError, match=r"run 'victim' \(channel 'v'\) cannot be decoded"):
        workspace.saver.get_tuple(stored)
    assert not marker.exists()
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
