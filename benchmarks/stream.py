"""What streaming costs: ``App.astream`` (every typed event parsed and yielded) against
``App.arun`` on the same team, per agent step, and both against plain LangGraph's
``astream`` of an equivalent graph for scale.

Contenders run interleaved in one process (ABAB...), each round a batch of runs; the
paired ratio astream/arun is reported per round with its min and median, and the
machine's load average is printed.

    python benchmarks/stream.py [--rounds 9] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from itertools import pairwise
from pathlib import Path

from corral import AgentSpec, EdgeSpec, FlowSpec, SchemaSpec, Team

NODES = 10


def chain() -> Team:
    ids = [f"a{i}" for i in range(NODES)]
    edges = [EdgeSpec(from_=a, to=b, schema_name="Note") for a, b in pairwise(ids)]
    edges.append(EdgeSpec(from_=ids[-1], to="END", schema_name="Note"))
    return Team(
        name="chain",
        schemas={"Note": SchemaSpec(fields={"text": "str"})},
        agents=[AgentSpec(id=i, role="Writer") for i in ids],
        flow=FlowSpec(entry=ids[0], input="Note", output="Note", edges=edges),
    )


async def measure(rounds: int, runs: int, db: Path) -> dict[str, list[float]]:
    app = chain().compile(db=db)
    note = {"text": "hello"}

    async def arun() -> None:
        result = await app.arun(note)
        assert result.ok

    async def astream() -> None:
        events = [e async for e in app.astream(note)]
        assert events[-1].status == "completed"  # type: ignore[union-attr]

    contenders = {"arun": arun, "astream": astream}
    per_step: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm up
        await fn()
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            for _ in range(runs):
                await fn()
            per_step[name].append((time.perf_counter() - start) / (runs * NODES) * 1e6)
    app.close()
    return per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        per_step = asyncio.run(measure(args.rounds, args.runs, Path(tmp) / "w.db"))
    ratios = [s / r for s, r in zip(per_step["astream"], per_step["arun"], strict=True)]
    for name, values in per_step.items():
        print(f"{name:8} median {statistics.median(values):8.1f} us/step, min {min(values):8.1f}")
    print(
        f"astream / arun per step: median {statistics.median(ratios):.3f}x, "
        f"min {min(ratios):.3f}x over {len(ratios)} paired rounds"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
