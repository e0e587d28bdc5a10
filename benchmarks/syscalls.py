"""System calls per step: corral's 10-node chain against plain LangGraph on the same saver.

A step's kernel time is in its system calls (page writes and reads of the SQLite file,
its locks, thread hand-offs), and their count does not depend on the machine's load.
Each contender (``step_overhead.py``'s chains, on ``CorralSaver``, durability "sync")
runs in a child process under ``strace -f -c`` twice, once with no measured runs and once
with ``--runs`` runs after the same warm-up; the difference, per step, is what a step
costs in system calls, by call. strace must be installed.

    python benchmarks/syscalls.py [--kind agent|function] [--runs 20]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from step_overhead import NODES, stored

WARM_UP = 3
ROW = re.compile(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$")


def child(name: str, kind: str, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_corral, run_plain = stored(kind, "corral", Path(tmp))
        run = run_corral if name == "corral" else run_plain
        for i in range(WARM_UP):
            run(-1 - i)
        for i in range(runs):
            run(i)


def counted(name: str, kind: str, runs: int) -> dict[str, int]:
    """System calls by call of one child process (its threads included)."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = [sys.executable, __file__, "--child", name, "--kind", kind, "--runs", str(runs)]
        subprocess.run(["strace", "-f", "-c", "-o", out.name, *command], check=True)
        found = (ROW.match(line) for line in Path(out.name).read_text().splitlines())
        return {m[2]: int(m[1]) for m in found if m is not None and m[2] != "total"}


def per_step(name: str, kind: str, runs: int) -> dict[str, float]:
    idle, busy = counted(name, kind, 0), counted(name, kind, runs)
    calls = set(idle) | set(busy)
    return {c: (busy.get(c, 0) - idle.get(c, 0)) / (runs * NODES) for c in calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=["agent", "function"], default="agent")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--child", choices=["corral", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.kind, args.runs)
        return
    if shutil.which("strace") is None:
        sys.exit("syscalls.py needs strace (apt-get install strace)")
    print(f"system calls per step, {args.kind} chain, {args.runs} runs of {NODES} steps")
    for name in ("plain", "corral"):
        calls = per_step(name, args.kind, args.runs)
        shown = sorted(((n, c) for c, n in calls.items() if abs(n) >= 0.5), reverse=True)
        detail = ", ".join(f"{c} {n:.1f}" for n, c in shown)
        print(f"{name:7} {sum(calls.values()):6.1f}  ({detail})", flush=True)


if __name__ == "__main__":
    main()
