"""Loading the latest checkpoint of one long run: corral's saver against SqliteSaver.

One thread is run for N steps (a node that loops on itself) with each saver, then the
latest state is loaded again and again (``graph.get_state``: what every resume and every
step's read does). Contenders are interleaved in each round, in one process, on one
disk; the paired ratio corral / SqliteSaver is printed per round (min and median), with
the machine's load. A load that stays flat as N grows is the point: before this, corral
read every blob of the run on each load.

    python benchmarks/long_run.py [--steps 100 1000 2000] [--rounds 7] [--loads 200]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from corral.workspace import CorralSaver


class Loop(TypedDict):
    count: int
    note: str


def loop_graph(checkpointer: Any, steps: int) -> Any:
    def step(state: Loop) -> dict[str, Any]:
        return {"count": state["count"] + 1, "note": f"step {state['count']}"}

    graph = StateGraph(Loop)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda s: END if s["count"] >= steps else "step")
    return graph.compile(checkpointer=checkpointer)


def sqlite_saver(path: Path) -> SqliteSaver:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return SqliteSaver(conn)


def loader(graph: Any, loads: int) -> Callable[[], float]:
    config = {"configurable": {"thread_id": "long"}}

    def measure() -> float:
        start = time.perf_counter()
        for _ in range(loads):
            graph.get_state(config)
        return (time.perf_counter() - start) / loads * 1e3

    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 2000])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loads", type=int, default=200)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for steps in args.steps:
            graphs = {
                "SqliteSaver": loop_graph(sqlite_saver(tmp / f"lg-{steps}.db"), steps),
                "corral": loop_graph(CorralSaver(tmp / f"corral-{steps}.db"), steps),
            }
            config = {"configurable": {"thread_id": "long"}, "recursion_limit": steps + 10}
            for graph in graphs.values():
                graph.invoke({"count": 0, "note": ""}, config, durability="sync")
            timers = {name: loader(g, args.loads) for name, g in graphs.items()}
            samples: dict[str, list[float]] = {name: [] for name in timers}
            for timer in timers.values():
                timer()  # warm up
            for _ in range(args.rounds):
                for name, timer in timers.items():
                    samples[name].append(timer())
            ratios = [c / s for c, s in zip(samples["corral"], samples["SqliteSaver"], strict=True)]
            print(
                f"{steps:>6} steps: load latest checkpoint  "
                + "  ".join(f"{n} {statistics.median(v):.3f} ms" for n, v in samples.items())
                + f"  corral/SqliteSaver min {min(ratios):.2f}x"
                + f" median {statistics.median(ratios):.2f}x"
            )


if __name__ == "__main__":
    main()
