"""Memory of a long-lived process: RSS across many sequential runs of one app.

The 10-node function chain of ``step_overhead.py`` runs ``--runs`` times in a row through
``App.run`` on one workspace file. RSS (``/proc/self/statm``) is sampled at 20 even
intervals; the slope of a least-squares line over the second half of the samples (after
caches have filled) is printed in KB per 1,000 runs, with the RSS at each sample and the
number of runs the checkpointer still remembers (0 when every finished run is released).

    python benchmarks/memory.py [--runs 100000] [--samples 20]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from step_overhead import START_PAYLOAD, corral_team


def rss_kb() -> float:
    """Resident set size of this process in KB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    every = max(1, args.runs // args.samples)
    points: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        app = corral_team("function").compile(db=Path(tmp) / "memory.db")
        start = time.perf_counter()
        for i in range(1, args.runs + 1):
            assert app.run(START_PAYLOAD).ok
            if i % every == 0:
                gc.collect()
                points.append((i, rss_kb()))
                remembered = getattr(app.workspace.saver, "remembered", "-")  # "-": older code
                print(
                    f"  {i:>7} runs  RSS {points[-1][1] / 1024:7.1f} MB  "
                    f"runs remembered by the saver {remembered}",
                    flush=True,
                )
        seconds = time.perf_counter() - start
        app.close()
    half = points[len(points) // 2 :]
    xs, ys = [p[0] for p in half], [p[1] for p in half]
    slope = statistics.linear_regression(xs, ys).slope * 1000 if len(half) > 1 else 0.0
    print(
        f"{args.runs} runs in {seconds:.0f} s; RSS {points[0][1] / 1024:.1f} MB after "
        f"{points[0][0]} runs, {points[-1][1] / 1024:.1f} MB after {points[-1][0]}; "
        f"slope over the second half {slope:+.2f} KB per 1,000 runs"
    )
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
