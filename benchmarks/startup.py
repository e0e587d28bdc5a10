"""Start-up and validation time, each in a fresh process, against a baseline.

- ``import corral`` against ``import langgraph.graph`` (target: at most 1.1x); also
  ``from corral import App, load_team``, the whole runtime, for the record;
- ``corral --help`` in seconds (target: at most 0.3 s), and against ``python -c pass``;
- ``corral validate`` of a 1,000-agent team against a 10-agent one (target: at most
  1.1x the 10-agent time plus 0.2 s). Both team files are generated into a temporary
  directory: a chain of agents passing one schema on, each reporting to the agent
  ``(i - 1) // 10`` (a tree ten wide).

Contenders run interleaved (A B A B ...), one process each time; paired ratios are
printed with their minimum and median, with the machine's load average.

    python benchmarks/startup.py [--rounds 11]
"""

from __future__ import annotations

import argparse
import os
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


def seconds(command: Sequence[str]) -> float:
    """Wall time of one fresh process running ``command`` (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def interleaved(commands: dict[str, Sequence[str]], rounds: int) -> dict[str, list[float]]:
    """Each command once per round, in turn; one warm-up round is not counted."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for n in range(rounds + 1):
        for name, command in commands.items():
            took = seconds(command)
            if n:
                times[name].append(took)
    return times


def ratios(a: list[float], b: list[float]) -> str:
    paired = [x / y for x, y in zip(a, b, strict=True)]
    return f"min {min(paired):.2f}x median {statistics.median(paired):.2f}x"


def spread(values: list[float]) -> str:
    return f"min {min(values):.3f} s median {statistics.median(values):.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    t = interleaved(
        {
            "corral": [PYTHON, "-c", "import corral"],
            "langgraph": [PYTHON, "-c", "import langgraph.graph"],
            "runtime": [PYTHON, "-c", "from corral import App, load_team"],
        },
        args.rounds,
    )
    print(
        f"import corral            {spread(t['corral'])}; vs import langgraph.graph "
        f"({spread(t['langgraph'])}): {ratios(t['corral'], t['langgraph'])} (target <= 1.10x)"
    )
    print(
        f"from corral import App   {spread(t['runtime'])}; vs import langgraph.graph: "
        f"{ratios(t['runtime'], t['langgraph'])} (the whole runtime, for the record)",
        flush=True,
    )

    t = interleaved({"help": [*CORRAL, "--help"], "pass": [PYTHON, "-c", "pass"]}, args.rounds)
    extra = [h - p for h, p in zip(t["help"], t["pass"], strict=True)]
    print(
        f"corral --help            {spread(t['help'])} (target <= 0.3 s); python -c pass "
        f"{spread(t['pass'])}; difference {spread(extra)}",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as tmp:
        files = {n: Path(tmp) / f"team_{n}.yaml" for n in (10, 1000)}
        for n, path in files.items():
            path.write_text(team_yaml(n), encoding="utf-8")
        t = interleaved({n: [*CORRAL, "validate", str(p)] for n, p in files.items()}, args.rounds)
    over = [big - (1.1 * small + 0.2) for big, small in zip(t[1000], t[10], strict=True)]
    print(
        f"corral validate 1,000 agents {spread(t[1000])}; 10 agents {spread(t[10])}; "
        f"{ratios(t[1000], t[10])}; 1,000 - (1.1 x 10 + 0.2 s): median "
        f"{statistics.median(over):+.3f} s (target <= 0)"
    )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
