"""Per-step overhead of corral's Postgres saver against ``langgraph-checkpoint-postgres``.

Both savers run the same graphs against one Postgres server, each in its own database:
a loop (one node, one step after another) and a fan-out (each step sends to ``--width``
branches that join). Both decode strictly (no pickle). Each round runs every contender
once on a fresh run, the order alternating (ABAB...), and the paired ratio
corral / PostgresSaver is printed (min and median) with the machine's load; then the
latest state of a finished run is loaded again and again (what every resume reads).

Without ``--url`` a throwaway cluster is started from Debian's binaries (as the tests
do) and removed after.

    python benchmarks/postgres.py [--url postgresql://...] [--steps 30] [--rounds 15]
"""

from __future__ import annotations

import argparse
import importlib
import operator
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

import psycopg
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from corral.workspace import open_workspace


class Loop(TypedDict):
    count: int
    note: str


class Fan(TypedDict):
    count: int
    results: Annotated[list[str], operator.add]


def loop_graph(checkpointer: Any, steps: int) -> Any:
    def step(state: Loop) -> dict[str, Any]:
        return {"count": state["count"] + 1, "note": f"step {state['count']}"}

    graph = StateGraph(Loop)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda s: END if s["count"] >= steps else "step")
    return graph.compile(checkpointer=checkpointer)


def fan_graph(checkpointer: Any, rounds: int, width: int) -> Any:
    def plan(state: Fan) -> dict[str, Any]:
        return {"count": state["count"] + 1}

    def branch(arg: dict[str, Any]) -> dict[str, Any]:
        return {"results": [f"{arg['round']}-{arg['i']}"]}

    def fan(state: Fan) -> Any:
        if state["count"] > rounds:
            return END
        return [Send("branch", {"round": state["count"], "i": i}) for i in range(width)]

    graph = StateGraph(Fan)
    graph.add_node("plan", plan)
    graph.add_node("branch", branch)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan, ["branch", END])
    graph.add_edge("branch", "plan")
    return graph.compile(checkpointer=checkpointer)


@contextmanager
def langgraph_saver(url: str) -> Iterator[PostgresSaver]:
    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=1,
        max_size=8,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    saver = PostgresSaver(pool, serde=JsonPlusSerializer(pickle_fallback=False))  # type: ignore[arg-type]
    saver.setup()
    try:
        yield saver
    finally:
        pool.close()


@contextmanager
def server(url: str | None) -> Iterator[Callable[[str], str]]:
    """A function making a fresh database by name, on ``url``'s server or a throwaway one."""
    if url is not None:

        def make(name: str) -> str:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name}".encode())
                conn.execute(f"CREATE DATABASE {name}".encode())
            return url.rsplit("/", 1)[0] + "/" + name

        yield make
        return
    sys.path.insert(0, str(Path(__file__).parents[1]))
    cluster = importlib.import_module("tests.workspace.postgres_cluster").cluster
    with cluster() as running:

        def made(name: str) -> str:
            with psycopg.connect(running.url("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}".encode())
            return str(running.url(name))

        yield made


def timed(graph: Any, state: dict[str, Any], steps: int, limit: int) -> float:
    """Milliseconds per step of one fresh run."""
    config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": limit}
    start = time.perf_counter()
    graph.invoke(state, config, durability="sync")
    return (time.perf_counter() - start) / steps * 1e3


def loads(graph: Any, thread_id: str, count: int) -> float:
    config = {"configurable": {"thread_id": thread_id}}
    start = time.perf_counter()
    for _ in range(count):
        graph.get_state(config)
    return (time.perf_counter() - start) / count * 1e3


def report(what: str, samples: dict[str, list[float]]) -> None:
    """Median and min per contender, and the paired ratio's min and median."""
    ratios = [c / p for c, p in zip(samples["corral"], samples["PostgresSaver"], strict=True)]
    print(
        f"{what:<32}"
        + "  ".join(
            f"{n} {statistics.median(v):.3f} (min {min(v):.3f}) ms" for n, v in samples.items()
        )
        + f"  corral/PostgresSaver paired min {min(ratios):.2f}x"
        + f" median {statistics.median(ratios):.2f}x"
    )


def puts(saver: Any, count: int) -> float:
    """Milliseconds per step of the saver alone: one task's writes, then the checkpoint."""
    config: Any = {"configurable": {"thread_id": uuid.uuid4().hex, "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    start = time.perf_counter()
    for step in range(count):
        checkpoint = {**checkpoint, "id": str(uuid.uuid4()), "channel_values": {"n": step}}
        checkpoint["channel_versions"] = {"n": step + 1}
        if step:
            saver.put_writes(config, [("n", step)], task_id=f"task{step}")
        config = saver.put(config, checkpoint, {"step": step}, {"n": step + 1})
    return (time.perf_counter() - start) / count * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", help="a server to use (a database per saver is created)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--loads", type=int, default=200)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    fan_rounds = max(1, args.steps // 5)
    with server(args.url) as make:
        tag = uuid.uuid4().hex[:6]
        workspace = open_workspace(make(f"bench_corral_{tag}"))
        with langgraph_saver(make(f"bench_langgraph_{tag}")) as theirs:
            savers = {"corral": workspace.saver, "PostgresSaver": theirs}
            loops = {n: loop_graph(s, args.steps) for n, s in savers.items()}
            fans = {n: fan_graph(s, fan_rounds, args.width) for n, s in savers.items()}
            runs: dict[str, dict[str, list[float]]] = {
                "saver alone: ms per step": {n: [] for n in savers},
                "loop: ms per step": {n: [] for n in savers},
                f"fan-out x{args.width}: ms per branch": {n: [] for n in savers},
            }
            names = list(savers)
            for r in range(args.rounds + 1):  # the first round warms up
                for name in names if r % 2 else reversed(names):
                    lp = timed(loops[name], {"count": 0, "note": ""}, args.steps, args.steps + 10)
                    fn = timed(
                        fans[name],
                        {"count": 0, "results": []},
                        fan_rounds * args.width,
                        fan_rounds * 3 + 10,
                    )
                    alone = puts(savers[name], args.steps)
                    if r:
                        runs["saver alone: ms per step"][name].append(alone)
                        runs["loop: ms per step"][name].append(lp)
                        runs[f"fan-out x{args.width}: ms per branch"][name].append(fn)
            for what, samples in runs.items():
                report(what, samples)
            finished = {}
            for name, graph in loops.items():
                thread = f"load-{name}"
                config = {"configurable": {"thread_id": thread}, "recursion_limit": 10_000}
                graph.invoke({"count": 0, "note": ""}, config, durability="sync")
                finished[name] = thread
            loaded: dict[str, list[float]] = {n: [] for n in savers}
            for r in range(args.rounds):
                for name in names if r % 2 else reversed(names):
                    loaded[name].append(loads(loops[name], finished[name], args.loads))
            report(f"load latest of {args.steps} steps", loaded)
        workspace.close()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
