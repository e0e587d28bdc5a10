"""Start-up and validation time, each in a fresh process, against a baseline.

- ``import corral`` against ``import langgraph.graph`` (target: at most 1.1x); also
  ``from corral import App, load_team``, the whole runtime, for the record;
- ``corral --help`` in seconds (target: at most 0.3 s), and against ``python -c pass``;
- ``corral validate`` of a 1,000-agent team against a 10-agent one (target: at most
  1.1x the 10-agent time plus 0.2 s). Both team files are generated into a temporary
  directory: a chain of agents passing one schema on, each reporting to the agent
  ``(i - 1) // 10`` (a tree ten wide).

Contenders run interleaved (A B A B ...), one process each time; paired ratios are
printed with their minimum and median, with the machine's load average. Each figure is
given twice: wall time, and the CPU time (user + system) of the process, which a busy
shared machine disturbs far less.

    python benchmarks/startup.py [--rounds 11]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PYTHON = sys.executable
CORRAL = [PYTHON, "-c", "from corral.cli import main; main()"]  # the `corral` script's body


def team_yaml(agents: int) -> str:
    """A valid team file of ``agents`` agents (see the module's docstring)."""
    lines = [
        "version: 1",
        f"name: chain_{agents}",
        "models:",
        "  default: scripted",
        "schemas:",
        "  Note:",
        "    fields:",
        "      text: {type: str, min_length: 1, max_length: 400}",
        "      score: {type: int, ge: 0, le: 10}",
        "agents:",
    ]
    for i in range(agents):
        lines += [f"  - id: a{i}", f"    role: Worker {i}", f"    instructions: Improve note {i}."]
        if i:
            lines.append(f"    reports_to: a{(i - 1) // 10}")
    lines += ["flow:", "  entry: a0", "  input: Note", "  output: Note", "  edges:"]
    for i in range(agents):
        to = f"a{i + 1}" if i + 1 < agents else "END"
        lines.append(f"    - {{from: a{i}, to: {to}, schema: Note}}")
    return "\n".join(lines) + "\n"


def seconds(command: Sequence[str]) -> tuple[float, float]:
    """Wall and CPU time of one fresh process running ``command`` (it must succeed), from
    a neutral directory: ``corral`` is the installed one (or the one ``PYTHONPATH`` names,
    to measure other code), never a ``corral/`` that the current directory holds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


Times = dict[str, dict[object, list[float]]]


def interleaved(commands: dict[object, Sequence[str]], rounds: int) -> Times:
    """Each command once per round, in turn; one warm-up round is not counted."""
    times: Times = {"wall": {k: [] for k in commands}, "cpu": {k: [] for k in commands}}
    for n in range(rounds + 1):
        for name, command in commands.items():
            wall, cpu = seconds(command)
            if n:
                times["wall"][name].append(wall)
                times["cpu"][name].append(cpu)
    return times


def ratios(a: list[float], b: list[float]) -> str:
    paired = [x / y for x, y in zip(a, b, strict=True)]
    return f"min {min(paired):.2f}x median {statistics.median(paired):.2f}x"


def spread(values: list[float]) -> str:
    return f"min {min(values):.3f} s median {statistics.median(values):.3f} s"


def report(times: Times) -> None:
    for clock in ("wall", "cpu"):
        t = times[clock]
        print(f"  {clock:>4}: " + "; ".join(f"{name} {spread(v)}" for name, v in t.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    times = interleaved(
        {
            "import corral": [PYTHON, "-c", "import corral"],
            "import langgraph.graph": [PYTHON, "-c", "import langgraph.graph"],
            "from corral import App, load_team": [
                PYTHON,
                "-c",
                "from corral import App, load_team",
            ],
        },
        args.rounds,
    )
    print("start-up:")
    report(times)
    for clock in ("wall", "cpu"):
        t = times[clock]
        base = t["import langgraph.graph"]
        print(
            f"  {clock:>4}: import corral / import langgraph.graph "
            f"{ratios(t['import corral'], base)} (target <= 1.10x); the whole runtime "
            f"(from corral import App, load_team) / import langgraph.graph "
            f"{ratios(t['from corral import App, load_team'], base)}"
        )

    times = interleaved(
        {"corral --help": [*CORRAL, "--help"], "python -c pass": [PYTHON, "-c", "pass"]},
        args.rounds,
    )
    print("corral --help (target <= 0.3 s):")
    report(times)
    for clock in ("wall", "cpu"):
        t = times[clock]
        extra = [h - p for h, p in zip(t["corral --help"], t["python -c pass"], strict=True)]
        print(f"  {clock:>4}: corral --help - python -c pass {spread(extra)}")

    with tempfile.TemporaryDirectory() as tmp:
        files = {n: Path(tmp) / f"team_{n}.yaml" for n in (10, 1000)}
        for n, path in files.items():
            path.write_text(team_yaml(n), encoding="utf-8")
        times = interleaved(
            {f"{n} agents": [*CORRAL, "validate", str(p)] for n, p in files.items()}, args.rounds
        )
    print("corral validate (target: 1,000 agents <= 1.1 x 10 agents + 0.2 s):")
    report(times)
    for clock in ("wall", "cpu"):
        big, small = times[clock]["1000 agents"], times[clock]["10 agents"]
        over = [b - (1.1 * s + 0.2) for b, s in zip(big, small, strict=True)]
        print(
            f"  {clock:>4}: 1,000 / 10 agents {ratios(big, small)}; "
            f"1,000 - (1.1 x 10 + 0.2 s): min {min(over):+.3f} s "
            f"median {statistics.median(over):+.3f} s (target <= 0)"
        )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
