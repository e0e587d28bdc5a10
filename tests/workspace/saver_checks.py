"""Checks every checkpointer must pass, whatever its backend (each test file gives its
own saver, hostile strings its database can hold, and a way to tamper a stored blob)."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint

from corral import CheckpointError

HOSTILE = ["') OR 1=1--", "a'b\"c", "日本語🙂" * 50, "t" * 10_000, "%_*", ""]
"""Ids, namespaces and filters that any backend must treat as plain data."""

TAMPERS = ["pickle", "ext", "garbage"]


def checkpoint(values: dict[str, Any], versions: dict[str, int]) -> Any:
    cp = empty_checkpoint()
    cp["channel_values"] = values
    cp["channel_versions"] = versions
    return cp


def check_hostile_data(saver: BaseCheckpointSaver[Any], hostile: list[str]) -> None:
    """Hostile ids, namespaces, metadata and filters round-trip as data, touch nothing
    else, and deleting a hostile thread deletes that thread only."""
    bystander: Any = {"configurable": {"thread_id": "bystander", "checkpoint_ns": ""}}
    saver.put(bystander, checkpoint({"v": 0}, {"v": 1}), {"who": "bystander"}, {"v": 1})
    for i, text in enumerate(hostile):
        config: Any = {"configurable": {"thread_id": text or "empty", "checkpoint_ns": text}}
        stored = saver.put(
            config, checkpoint({"v": text}, {"v": 1}), {text or "k": text, "i": i}, {"v": 1}
        )
        saver.put_writes(stored, [("v", text)], task_id=text or "task")
        found = saver.get_tuple(stored)
        assert found is not None
        assert found.checkpoint["channel_values"] == {"v": text}
        assert found.pending_writes == [(text or "task", "v", text)]
        filtered = list(saver.list(None, filter={text or "k": text}))
        assert [t.metadata["i"] for t in filtered] == [i]
        assert list(saver.list(None, filter={"who": text})) == []
    assert saver.get_tuple(bystander) is not None
    assert len(list(saver.list(None))) == len(hostile) + 1
    saver.delete_thread("') OR 1=1--")
    assert saver.get_tuple(bystander) is not None
    assert len(list(saver.list(None))) == len(hostile)


class _Boom:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> Any:
        import os

        return (os.system, (self.command,))


def check_tampered_blob(
    saver: BaseCheckpointSaver[Any],
    tamper: str,
    marker: Path,
    store: Callable[[str, bytes], None],
) -> None:
    """A blob tampered in the database (``store`` writes a type and blob over thread
    'victim''s) is refused with a clear error, and what it carries never runs."""
    config: Any = {"configurable": {"thread_id": "victim", "checkpoint_ns": ""}}
    stored = saver.put(config, checkpoint({"v": "ok"}, {"v": 1}), {}, {"v": 1})
    command = f"touch {marker}"
    blob, kind = {
        "pickle": (pickle.dumps(_Boom(command)), "pickle"),
        "ext": (
            ormsgpack.packb(ormsgpack.Ext(1, ormsgpack.packb(["os", "system", [command]]))),
            "msgpack",
        ),
        "garbage": (b"\xc1\xff\x00 not msgpack", "msgpack"),
    }[tamper]
    store(kind, blob)
    with pytest.raises(CheckpointError, match=r"run 'victim' \(channel 'v'\) cannot be decoded"):
        saver.get_tuple(stored)
    assert not marker.exists()


class LateWrites:
    """Wraps a saver's connection context so that, the first time, once the caller's
    statements have run and before its commit, a task's writes arrive from another
    thread (as a fresh run's first writes arrive while its input checkpoint commits)."""

    def __init__(self, saver: Any, config: Any, writes: list[tuple[str, Any]]) -> None:
        self.saver, self.config, self.writes = saver, config, writes
        self.waited: list[bool] = []
        """For each arrival: whether the writes were still waiting after 5 s (committed
        apart, they would wait for the caller's lock)."""
        self.threads: list[threading.Thread] = []

    def around(
        self, context: Callable[[], AbstractContextManager[Any]]
    ) -> Callable[[], AbstractContextManager[Any]]:
        @contextmanager
        def late() -> Iterator[Any]:
            with context() as conn:
                yield conn
                if not self.threads:  # the first time only
                    args = (self.config, self.writes, "task-1")
                    arriving = threading.Thread(target=self.saver.put_writes, args=args)
                    self.threads.append(arriving)
                    arriving.start()
                    arriving.join(timeout=5)
                    self.waited.append(arriving.is_alive())

        return late

    def join(self) -> None:
        for arriving in self.threads:
            arriving.join()
