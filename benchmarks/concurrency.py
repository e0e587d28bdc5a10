"""Throughput of many concurrent runs in one process: 200 against 1,000 at once.

A 10-node function chain (the one in ``step_overhead.py``), run N at a time with
``asyncio.gather``: corral's ``App.arun`` (its saver and run registry), unbounded and
with ``max_running`` (at most that many runs driven at once; ``--bound``, default the
low level), against the same chain written in plain LangGraph on ``AsyncSqliteSaver``.
Each round runs every contender at every level, interleaved (ABAB...); per round the
ratio runs/s at the high level over runs/s at the low level is paired per contender,
and its min and median are printed with the machine's load. The target: corral's ratio >= 0.9.

    python benchmarks/concurrency.py [--levels 200 1000] [--rounds 5] [--bound 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

sys.path.insert(0, str(Path(__file__).parent))
from step_overhead import START_PAYLOAD, corral_team, plain_graph

Contender = Callable[[int], Awaitable[float]]


async def contenders(tmp: Path, stack: AsyncExitStack, bound: int) -> dict[str, Contender]:
    """Each contender runs N runs at once and returns runs per second."""
    app = corral_team("function").compile(db=tmp / "corral.db")
    gated = corral_team("function").compile(db=tmp / "gated.db", max_running=bound)
    conn = await stack.enter_async_context(aiosqlite.connect(tmp / "plain.db"))
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    plain = plain_graph("function", AsyncSqliteSaver(conn))

    async def corral(n: int) -> float:
        start = time.perf_counter()
        results = await asyncio.gather(*(app.arun(START_PAYLOAD) for _ in range(n)))
        assert all(r.ok for r in results)
        return n / (time.perf_counter() - start)

    async def bounded(n: int) -> float:
        start = time.perf_counter()
        results = await asyncio.gather(*(gated.arun(START_PAYLOAD) for _ in range(n)))
        assert all(r.ok for r in results)
        return n / (time.perf_counter() - start)

    async def langgraph(n: int) -> float:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                plain.ainvoke(
                    {"payload": START_PAYLOAD},
                    {"configurable": {"thread_id": uuid.uuid4().hex}},
                    durability="sync",
                )
                for _ in range(n)
            )
        )
        return n / (time.perf_counter() - start)

    return {"corral": corral, f"corral bound {bound}": bounded, "plain LangGraph": langgraph}


async def measure(levels: list[int], rounds: int, bound: int) -> dict[str, dict[int, list[float]]]:
    with tempfile.TemporaryDirectory() as tmp_name:
        async with AsyncExitStack() as stack:
            runners = await contenders(Path(tmp_name), stack, bound)
            samples = {name: {n: [] for n in levels} for name in runners}
            for run in runners.values():
                await run(20)  # warm up
            for _ in range(rounds):
                for n in levels:
                    for name, run in runners.items():
                        samples[name][n].append(await run(n))
            return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs=2, default=[200, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bound", type=int, default=None, help="max_running (default: low)")
    args = parser.parse_args()
    low, high = args.levels
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    samples = asyncio.run(measure(args.levels, args.rounds, args.bound or low))
    print(f"load average {os.getloadavg()[0]:.2f} after")
    for name, by_level in samples.items():
        ratios = [h / lo for lo, h in zip(by_level[low], by_level[high], strict=True)]
        print(
            f"{name:20} {low} at once {statistics.median(by_level[low]):7.1f} runs/s   "
            f"{high} at once {statistics.median(by_level[high]):7.1f} runs/s   "
            f"{high}/{low} min {min(ratios):.2f}x median {statistics.median(ratios):.2f}x"
        )


if __name__ == "__main__":
    main()
