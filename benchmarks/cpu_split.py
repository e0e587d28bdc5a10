"""Where a step's CPU time goes: user time (Python, LangGraph, pydantic) and system time
(the kernel: SQLite's file writes), corral's ``App.run`` against plain LangGraph on the
same saver, 10-node chains of ``step_overhead.py``, interleaved rounds (AB, BA, ...).

    python benchmarks/cpu_split.py [--kind agent] [--rounds 11] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from step_overhead import NODES, START_PAYLOAD, corral_team, plain_graph

from corral.workspace import CorralSaver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("agent", "function"), default="agent")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        plain = plain_graph(args.kind, CorralSaver(Path(tmp) / "plain.db"))
        app = corral_team(args.kind).compile(db=Path(tmp) / "corral.db")

        def tag(i: int) -> str:
            return f"{i}-{time.perf_counter_ns()}"

        contenders: dict[str, Callable[[int], Any]] = {
            "plain": lambda i: plain.invoke(
                {"payload": START_PAYLOAD},
                {"configurable": {"thread_id": tag(i)}},
                durability="sync",
            ),
            "corral": lambda i: app.run(START_PAYLOAD, run_id=f"r-{tag(i)}"),
        }
        for run in contenders.values():
            for i in range(5):
                run(-1 - i)
        spent: dict[str, dict[str, list[float]]] = {
            k: {"user": [], "system": []} for k in contenders
        }
        steps = args.runs * NODES
        for r in range(args.rounds):
            for name in ("plain", "corral") if r % 2 == 0 else ("corral", "plain"):
                before = resource.getrusage(resource.RUSAGE_SELF)
                for i in range(args.runs):
                    contenders[name](i)
                after = resource.getrusage(resource.RUSAGE_SELF)
                spent[name]["user"].append((after.ru_utime - before.ru_utime) / steps * 1e6)
                spent[name]["system"].append((after.ru_stime - before.ru_stime) / steps * 1e6)
        app.close()
    for part in ("user", "system"):
        paired = [c / p for c, p in zip(spent["corral"][part], spent["plain"][part], strict=True)]
        print(
            f"{args.kind} {part:6} plain {statistics.median(spent['plain'][part]):7.1f} us/step"
            f"   corral {statistics.median(spent['corral'][part]):7.1f} us/step"
            f"   paired median {statistics.median(paired):.2f}x min {min(paired):.2f}x"
        )
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
