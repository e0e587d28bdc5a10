"""Corral's checkpointer against LangGraph's SqliteSaver / AsyncSqliteSaver and none.

Same graphs, same process, same disk, interleaved rounds, medians; ratios printed.
Equal crash safety: every SQLite file runs in WAL with the same ``synchronous`` level
(NORMAL by default: safe against process crashes; ``--synchronous FULL`` for power loss)
and every graph runs with durability "sync".

    python benchmarks/checkpointer.py [--rounds 5] [--synchronous NORMAL|FULL] [--json out.json]
    python benchmarks/checkpointer.py --saver-alone [--rounds 2]   # that section only
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import json
import operator
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any, TypedDict

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from corral.workspace import CorralSaver

NODES = 10


class Chain(TypedDict):
    payload: dict[str, Any]
    path: Annotated[list[str], operator.add]


def chain_graph(checkpointer: Any) -> Any:
    """A 10-node chain; each node updates a small payload and appends to a list."""
    builder = StateGraph(Chain)
    ids = [f"n{i}" for i in range(NODES)]
    for node_id in ids:

        def step(state: Chain, _id: str = node_id) -> dict[str, Any]:
            payload = state["payload"]
            return {"payload": {**payload, "step": payload["step"] + 1, "last": _id}, "path": [_id]}

        builder.add_node(node_id, step)
    builder.add_edge(START, ids[0])
    for a, b in itertools.pairwise(ids):
        builder.add_edge(a, b)
    builder.add_edge(ids[-1], END)
    return builder.compile(checkpointer=checkpointer)


class Fan(TypedDict):
    results: Annotated[list[int], operator.add]


def fanout_graph(checkpointer: Any, width: int) -> Any:
    """One node sends ``width`` branches; a reducer gathers their results."""
    builder = StateGraph(Fan)
    builder.add_node("start", lambda _: {"results": []})
    builder.add_node("work", lambda item: {"results": [item["i"] * 2]})
    builder.add_edge(START, "start")
    builder.add_conditional_edges(
        "start", lambda _: [Send("work", {"i": i}) for i in range(width)], ["work"]
    )
    builder.add_edge("work", END)
    return builder.compile(checkpointer=checkpointer)


def sqlite_saver(path: Path, synchronous: str) -> SqliteSaver:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return SqliteSaver(conn)


async def async_sqlite_saver(
    path: Path, synchronous: str, stack: AsyncExitStack
) -> AsyncSqliteSaver:
    conn = await stack.enter_async_context(aiosqlite.connect(path))
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute(f"PRAGMA synchronous={synchronous}")
    return AsyncSqliteSaver(conn)


def config() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def durability(graph: Any) -> dict[str, Any]:
    """durability="sync" where there is a checkpointer. (LangGraph 1.2.22 raises
    AttributeError '_put_checkpoint_fut' if it is passed without one.)"""
    return {"durability": "sync"} if graph.checkpointer else {}


START_CHAIN = {"payload": {"step": 0, "last": "", "tags": ["a", "b"]}, "path": []}


def median_of(rounds: int, fns: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Interleave the contenders round by round; the median per contender."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm up
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(fn())
    return {name: statistics.median(values) for name, values in samples.items()}


def sync_chain(tmp: Path, sync: str, rounds: int) -> dict[str, float]:
    graphs = {
        "none": chain_graph(None),
        "InMemorySaver": chain_graph(InMemorySaver()),
        "SqliteSaver": chain_graph(sqlite_saver(tmp / "lg-sync.db", sync)),
        "corral": chain_graph(CorralSaver(tmp / "corral-sync.db", synchronous=sync)),
    }

    def timer(graph: Any, runs: int) -> Callable[[], float]:
        def measure() -> float:
            start = time.perf_counter()
            for _ in range(runs):
                graph.invoke(START_CHAIN, config(), **durability(graph))
            return (time.perf_counter() - start) / (runs * NODES) * 1e6

        return measure

    return median_of(
        rounds, {name: timer(g, 60 if name == "none" else 20) for name, g in graphs.items()}
    )


async def async_chain(tmp: Path, sync: str, rounds: int) -> dict[str, float]:
    async with AsyncExitStack() as stack:
        graphs = {
            "none": chain_graph(None),
            "InMemorySaver": chain_graph(InMemorySaver()),
            "AsyncSqliteSaver": chain_graph(
                await async_sqlite_saver(tmp / "lg-async.db", sync, stack)
            ),
            "corral": chain_graph(CorralSaver(tmp / "corral-async.db", synchronous=sync)),
        }
        samples: dict[str, list[float]] = {name: [] for name in graphs}
        for _ in range(rounds + 1):
            for name, graph in graphs.items():
                runs = 60 if name == "none" else 20
                start = time.perf_counter()
                for _ in range(runs):
                    await graph.ainvoke(START_CHAIN, config(), **durability(graph))
                samples[name].append((time.perf_counter() - start) / (runs * NODES) * 1e6)
        return {name: statistics.median(values[1:]) for name, values in samples.items()}


def fanout(tmp: Path, sync: str, rounds: int, width: int) -> dict[str, float]:
    graphs = {
        "none": fanout_graph(None, width),
        "InMemorySaver": fanout_graph(InMemorySaver(), width),
        "SqliteSaver": fanout_graph(sqlite_saver(tmp / "lg-fan.db", sync), width),
        "corral": fanout_graph(CorralSaver(tmp / "corral-fan.db", synchronous=sync), width),
    }

    def timer(graph: Any) -> Callable[[], float]:
        def measure() -> float:
            start = time.perf_counter()
            result = graph.invoke({"results": []}, config(), **durability(graph))
            assert len(result["results"]) == width
            return (time.perf_counter() - start) * 1e3

        return measure

    return median_of(rounds, {name: timer(g) for name, g in graphs.items()})


async def concurrent_runs(tmp: Path, sync: str, rounds: int, runs: int) -> dict[str, float]:
    async with AsyncExitStack() as stack:
        graphs = {
            "none": chain_graph(None),
            "InMemorySaver": chain_graph(InMemorySaver()),
            "AsyncSqliteSaver": chain_graph(
                await async_sqlite_saver(tmp / "lg-many.db", sync, stack)
            ),
            "corral": chain_graph(CorralSaver(tmp / "corral-many.db", synchronous=sync)),
        }

        async def once(graph: Any) -> float:
            start = time.perf_counter()
            await asyncio.gather(
                *(graph.ainvoke(START_CHAIN, config(), **durability(graph)) for _ in range(runs))
            )
            return runs / (time.perf_counter() - start)

        samples: dict[str, list[float]] = {name: [] for name in graphs}
        for _ in range(rounds):
            for name, graph in graphs.items():
                samples[name].append(await once(graph))
        return {name: statistics.median(values) for name, values in samples.items()}


def recorded_calls(int_versions: bool = False) -> list[tuple[str, tuple[Any, ...]]]:
    """The put / put_writes calls one run of the 10-node chain makes, in order. Channel
    versions are InMemorySaver's 50-character strings, or with ``int_versions`` the
    integers CorralSaver hands LangGraph (the base saver's ``get_next_version``)."""
    calls: list[tuple[str, tuple[Any, ...]]] = []

    class Recorder(InMemorySaver):
        def get_next_version(self, current: Any, channel: None) -> Any:
            if int_versions:
                return BaseCheckpointSaver.get_next_version(self, current, channel)
            return super().get_next_version(current, channel)

        def put(self, *args: Any) -> Any:
            calls.append(("put", copy.deepcopy(args)))
            return super().put(*args)

        def put_writes(self, *args: Any) -> None:
            calls.append(("put_writes", copy.deepcopy(args)))
            super().put_writes(*args)

    chain_graph(Recorder()).invoke(START_CHAIN, config(), durability="sync")
    return calls


def replay(saver: Any, calls: list[tuple[str, tuple[Any, ...]]], commit: Any = None) -> list[float]:
    """The calls again on ``saver`` under a fresh thread id; ``commit`` runs once per put.
    Returns the seconds of each step (its task writes and the checkpoint after them)."""
    thread_id = uuid.uuid4().hex
    steps: list[float] = []
    start = time.perf_counter()
    for name, (recorded, *rest) in calls:
        conf = {"configurable": {**recorded["configurable"], "thread_id": thread_id}}
        getattr(saver, name)(conf, *rest)
        if name == "put":
            if commit is not None:
                commit()
            now = time.perf_counter()
            steps.append(now - start)
            start = now
    return steps


def saver_alone(tmp: Path, sync: str, rounds: int) -> dict[str, float]:
    """put + put_writes per step, called directly with one chain run's arguments. The
    median step is reported: on a loaded machine a few commits stall for milliseconds
    (the mean is printed too)."""
    calls = recorded_calls()
    conn = sqlite3.connect(tmp / "commit.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")

    def one_commit() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO t VALUES (1, ?)", (b"x" * 300,))
        conn.execute("COMMIT")

    memory, corral = InMemorySaver(), CorralSaver(tmp / "corral-alone.db", synchronous=sync)
    contenders: dict[str, Callable[[], list[float]]] = {
        "InMemorySaver": lambda: replay(memory, calls),
        "InMemorySaver + 1 commit": lambda: replay(memory, calls, one_commit),
        "corral": lambda: replay(corral, calls),
    }
    steps: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()  # warm up
    for _ in range(rounds * 20):
        for name, fn in contenders.items():
            steps[name] += fn()
    print("\nthe saver alone, mean step (stalled commits included)")
    for name, values in steps.items():
        print(f"  {name:26} mean {statistics.mean(values) * 1e6:8.1f} us/step")
    return {name: statistics.median(values) * 1e6 for name, values in steps.items()}


def show(
    title: str, unit: str, results: dict[str, float], baseline: str, higher_is_better: bool = False
) -> dict[str, Any]:
    print(f"\n{title}")
    base = results[baseline]
    for name, value in results.items():
        ratio = value / base
        print(f"  {name:18} {value:10.1f} {unit}   {ratio:5.2f}x {baseline}")
    corral = results["corral"]
    for name, value in results.items():
        if name != "corral":
            speed = corral / value if higher_is_better else value / corral
            print(
                f"  corral is {speed:.2f}x {'as many' if higher_is_better else 'as fast'} as {name}"
            )
    return {"title": title, "unit": unit, "results": results}


def pages(tmp: Path, sync: str, runs: int) -> None:
    """Pages each checkpoint writes: WAL frames appended over ``runs`` chain runs (after a
    warm-up run and a truncating WAL checkpoint) per checkpoint stored. Few runs, so the
    WAL stays under SQLite's 1,000-page autocheckpoint, which would restart it."""
    savers: dict[str, Callable[[Path], Any]] = {
        "SqliteSaver": lambda path: sqlite_saver(path, sync),
        "CorralSaver": lambda path: CorralSaver(path, synchronous=sync),  # type: ignore[arg-type]
    }
    for name, make in savers.items():
        db = tmp / f"pages-{name}.db"
        graph = chain_graph(make(db))
        graph.invoke(copy.deepcopy(START_CHAIN), config(), durability="sync")
        probe = sqlite3.connect(db)
        probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = probe.execute(
            "SELECT count(*) FROM checkpoints"
            if name == "SqliteSaver"
            else "SELECT count(*) FROM cp_checkpoints"
        ).fetchone()[0]
        for _ in range(runs):
            graph.invoke(copy.deepcopy(START_CHAIN), config(), durability="sync")
        frames = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        after = probe.execute(
            "SELECT count(*) FROM checkpoints"
            if name == "SqliteSaver"
            else "SELECT count(*) FROM cp_checkpoints"
        ).fetchone()[0]
        probe.close()
        print(
            f"{name}: {frames} pages written for {after - before} checkpoints, "
            f"{frames / (after - before):.2f} pages per checkpoint (synchronous={sync})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--pages", type=int, default=0, metavar="RUNS", help="only count pages per checkpoint"
    )
    parser.add_argument(
        "--saver-alone", action="store_true", help="only time put + put_writes, called directly"
    )
    args = parser.parse_args()
    sync, rounds = args.synchronous, args.rounds
    if args.saver_alone:
        print(f"load average {os.getloadavg()}")
        with tempfile.TemporaryDirectory() as tmp_name:
            show(
                f"the saver alone: put + put_writes, median step, synchronous={sync}",
                "us/step",
                saver_alone(Path(tmp_name), sync, rounds),
                "InMemorySaver",
            )
        print(f"load average {os.getloadavg()}")
        return
    if args.pages:
        with tempfile.TemporaryDirectory() as tmp_name:
            pages(Path(tmp_name), sync, args.pages)
        return
    out = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        out.append(
            show(
                f"10-node chain, sync, synchronous={sync}",
                "us/step",
                sync_chain(tmp, sync, rounds),
                "none",
            )
        )
        out.append(
            show(
                f"the saver alone: put + put_writes, median step, synchronous={sync}",
                "us/step",
                saver_alone(tmp, sync, rounds),
                "InMemorySaver",
            )
        )
        out.append(
            show(
                f"10-node chain, async, synchronous={sync}",
                "us/step",
                asyncio.run(async_chain(tmp, sync, rounds)),
                "none",
            )
        )
        out.append(
            show(
                f"fan-out of {args.width} Send branches with a reducer",
                "ms/run",
                fanout(tmp, sync, max(3, rounds // 2), args.width),
                "none",
            )
        )
        out.append(
            show(
                f"{args.runs} concurrent async runs (10-node chain)",
                "runs/s",
                asyncio.run(concurrent_runs(tmp, sync, max(3, rounds // 2), args.runs)),
                "AsyncSqliteSaver",
                higher_is_better=True,
            )
        )
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
