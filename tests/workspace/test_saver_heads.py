"""A checkpoint is the run's head from the moment its ``put`` begins: writes against it
that arrive while it commits are held for the next checkpoint, not committed apart."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from corral import CorralSaver
from corral.workspace import _held
from tests.workspace.saver_checks import LateWrites


def config(checkpoint_id: str | None = None) -> Any:
    found: dict[str, Any] = {"thread_id": "run-1", "checkpoint_ns": ""}
    if checkpoint_id is not None:
        found["checkpoint_id"] = checkpoint_id
    return {"configurable": found}


def stored_writes(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM cp_writes").fetchone()[0])


@contextmanager
def disk_full(saver: CorralSaver) -> Iterator[None]:
    """Every write transaction of ``saver`` fails at its commit while inside."""
    pool_write = saver.pool.write

    @contextmanager
    def broken() -> Iterator[Any]:
        with pool_write() as conn:
            yield conn
            raise OSError("disk full")

    saver.pool.write = broken  # type: ignore[method-assign]
    try:
        yield
    finally:
        saver.pool.write = pool_write  # type: ignore[method-assign]


def test_writes_arriving_while_their_checkpoint_commits_are_held(tmp_path: Path) -> None:
    saver = CorralSaver(tmp_path / "w.db")
    first = empty_checkpoint()
    pool_write = saver.pool.write
    late = LateWrites(saver, config(first["id"]), [("x", 1)])
    saver.pool.write = late.around(pool_write)  # type: ignore[method-assign]
    try:
        saver.put(config(), first, {"step": -1}, {})
        saver.pool.write = pool_write  # type: ignore[method-assign]
        assert late.waited == [False], "the writes waited to be committed on their own"
        held = saver.get_tuple(config(first["id"]))
        assert held is not None
        assert [w[1:] for w in held.pending_writes] == [("x", 1)]
        assert stored_writes(tmp_path / "w.db") == 0  # held, not yet in the file
        second = empty_checkpoint()
        saver.put(config(first["id"]), second, {"step": 0}, {})  # commits them with it
        saver.close()
        again = CorralSaver(tmp_path / "w.db").get_tuple(config(first["id"]))
        assert again is not None
        assert [w[1:] for w in again.pending_writes] == [("x", 1)]
    finally:
        late.join()


def test_a_put_that_fails_gives_its_head_back_and_keeps_what_it_took(tmp_path: Path) -> None:
    saver = CorralSaver(tmp_path / "w.db")
    first, failed = empty_checkpoint(), empty_checkpoint()
    saver.put(config(), first, {"step": -1}, {})
    saver.put_writes(config(first["id"]), [("x", 1)], "task-1")  # a finished task: held
    with disk_full(saver), pytest.raises(OSError, match="disk full"):
        saver.put(config(first["id"]), failed, {"step": 0}, {})
    assert saver.get_tuple(config(failed["id"])) is None
    # the writes the failed put took to commit are held again, not lost with it
    held = saver.get_tuple(config(first["id"]))
    assert held is not None
    assert [w[1:] for w in held.pending_writes] == [("x", 1)]
    # writes against the head that stands (not the failed one) are held too
    saver.put_writes(config(first["id"]), [("y", 2)], "task-2")
    assert stored_writes(tmp_path / "w.db") == 0  # held, not committed at once
    held = saver.get_tuple(config(first["id"]))
    assert held is not None
    assert [w[1:] for w in held.pending_writes] == [("x", 1), ("y", 2)]
    saver.close()
    assert stored_writes(tmp_path / "w.db") == 2


def test_a_release_that_fails_and_a_forgotten_head_lose_no_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = CorralSaver(tmp_path / "w.db")
    runs = [{"configurable": {"thread_id": f"run-{i}", "checkpoint_ns": ""}} for i in range(3)]
    heads = [saver.put(run, empty_checkpoint(), {"step": -1}, {}) for run in runs[:2]]
    for i, head in enumerate(heads):
        saver.put_writes(head, [("x", i)], f"task-{i}")
    with disk_full(saver), pytest.raises(OSError, match="disk full"):
        saver.release("run-0")
    found = saver.get_tuple(heads[0])
    assert found is not None
    assert [w[1:] for w in found.pending_writes] == [("x", 0)]
    # a third run pushes the oldest remembered head (run-1's) out: its writes stay
    # readable and go with the next commit
    monkeypatch.setattr(_held, "MAX_HEADS", 1)
    saver.put(runs[2], empty_checkpoint(), {"step": -1}, {})
    assert saver.remembered == 1
    found = saver.get_tuple(heads[1])
    assert found is not None
    assert [w[1:] for w in found.pending_writes] == [("x", 1)]
    saver.release("run-1")  # nothing of its own held now: commits the others' too
    assert stored_writes(tmp_path / "w.db") == 2
    other = CorralSaver(tmp_path / "w.db")  # another process sees them
    for i, head in enumerate(heads):
        found = other.get_tuple(head)
        assert found is not None
        assert [w[1:] for w in found.pending_writes] == [("x", i)]
