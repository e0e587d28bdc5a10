"""CorralSaver: hostile ids, tampered blobs, concurrency, and storage size."""

from __future__ import annotations

import asyncio
import operator
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

import ormsgpack
import pytest
from langgraph.graph import END, START, StateGraph

from corral import CheckpointError, CorralSaver, load_team
from tests.conftest import CHAIN, run_unblocked
from tests.workspace.saver_checks import (
    HOSTILE,
    TAMPERS,
    check_hostile_data,
    check_tampered_blob,
    checkpoint,
)


def test_hostile_ids_namespaces_and_filters_are_only_data(tmp_path: Path) -> None:
    saver = CorralSaver(tmp_path / "w.db")
    check_hostile_data(saver, [*HOSTILE, "x\x00y"])  # SQLite text holds NUL too
    saver.close()


@pytest.mark.parametrize("tamper", TAMPERS)
def test_tampered_blobs_are_refused_not_executed(tmp_path: Path, tamper: str) -> None:
    saver = CorralSaver(tmp_path / "w.db")

    def store(kind: str, blob: bytes) -> None:
        with sqlite3.connect(tmp_path / "w.db") as conn:
            conn.execute(
                "UPDATE cp_blobs SET type = ?, blob = ? WHERE thread_id = 'victim'", (kind, blob)
            )

    check_tampered_blob(saver, tamper, tmp_path / "pwned", store)
    saver.close()


def test_error_names_the_blocked_type(tmp_path: Path) -> None:
    saver = CorralSaver(tmp_path / "w.db")
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    stored = saver.put(config, checkpoint({"v": 1}, {"v": 1}), {}, {"v": 1})
    with sqlite3.connect(tmp_path / "w.db") as conn:
        conn.execute(
            "UPDATE cp_blobs SET blob = ?",
            (ormsgpack.packb(ormsgpack.Ext(1, ormsgpack.packb(["subprocess", "run", ["x"]]))),),
        )
    with pytest.raises(CheckpointError, match=r"not allowed: subprocess\.run"):
        saver.get_tuple(stored)


def test_threads_and_tasks_share_a_workspace(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    with load_team(CHAIN).compile(db=tmp_path / "w.db") as app:
        results: list[Any] = []

        def worker(k: int) -> None:
            for i in range(6):
                results.append(
                    app.run({"log": str(log), "pause": 0, "count": 0}, run_id=f"thread-{k}-{i}")
                )

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()

        async def many() -> list[Any]:
            return await asyncio.gather(
                *(app.arun({"log": str(log), "pause": 0, "count": 0}) for _ in range(40))
            )

        results.extend(run_unblocked(many()))
        for t in threads:
            t.join()
    assert len(results) == 76
    assert {r.status for r in results} == {"completed"}
    assert {r.output["count"] for r in results} == {4}


def test_processes_share_a_workspace_without_lock_errors(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from corral import load_team
        with load_team({str(CHAIN)!r}).compile(db={str(tmp_path / "w.db")!r}) as app:
            for i in range(15):
                r = app.run({{"log": {str(tmp_path / "log.txt")!r}, "pause": 0, "count": 0}},
                            run_id=f"p{{sys.argv[1]}}-{{i}}")
                assert r.status == "completed", r
        print("ok")
    """)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(k)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
        assert out.strip() == "ok"
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert (
            conn.execute("SELECT count(*) FROM runs WHERE status = 'completed'").fetchone()[0] == 60
        )


class Big(TypedDict):
    big: str
    n: Annotated[int, operator.add]


def counting_graph(saver: CorralSaver, steps: int) -> Any:
    builder = StateGraph(Big)
    builder.add_node("tick", lambda _: {"n": 1})
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", lambda s: "tick" if s["n"] < steps else END)
    return builder.compile(checkpointer=saver)


def test_unchanged_channels_are_not_rewritten(tmp_path: Path) -> None:
    saver = CorralSaver(tmp_path / "w.db")
    graph = counting_graph(saver, 30)
    config = {"configurable": {"thread_id": "long"}, "recursion_limit": 100}
    assert graph.invoke({"big": "x" * 100_000, "n": 0}, config)["n"] == 30
    with sqlite3.connect(tmp_path / "w.db") as conn:
        checkpoints = conn.execute("SELECT count(*) FROM cp_checkpoints").fetchone()[0]
        big_blobs = conn.execute("SELECT count(*) FROM cp_blobs WHERE channel = 'big'").fetchone()[
            0
        ]
        n_blobs = conn.execute("SELECT count(*) FROM cp_blobs WHERE channel = 'n'").fetchone()[0]
    assert checkpoints >= 30
    assert big_blobs == 1  # written once, referenced by every checkpoint
    assert n_blobs >= 30
    assert graph.get_state(config).values["big"] == "x" * 100_000


def test_keep_bounds_a_long_run(tmp_path: Path) -> None:
    saver = CorralSaver(tmp_path / "w.db", keep=5)
    graph = counting_graph(saver, 300)
    config = {"configurable": {"thread_id": "long"}, "recursion_limit": 1000}
    assert graph.invoke({"big": "x" * 10_000, "n": 0}, config)["n"] == 300
    with sqlite3.connect(tmp_path / "w.db") as conn:
        checkpoints = conn.execute("SELECT count(*) FROM cp_checkpoints").fetchone()[0]
        blobs = conn.execute("SELECT count(*) FROM cp_blobs").fetchone()[0]
    assert checkpoints <= 10
    assert blobs <= 40
    assert graph.get_state(config).values == {"big": "x" * 10_000, "n": 300}
    saver.keep_last(["long"], 1)
    assert len(list(saver.list(config))) == 1
    assert graph.get_state(config).values["n"] == 300
