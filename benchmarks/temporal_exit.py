"""How often a process that used the Temporal client crashes on its way out.

Each round starts two child processes, interleaved: one leaves as a bare script does
(``sys.exit``), the other by corral's way out (``corral.cli._exit.Exit``). Each connects
to a port where nothing listens (the connect fails, as with a mistyped ``--temporal``)
and exits with status 2. A status other than 2 is a crash in the interpreter's teardown
(temporalio/sdk-python#300: -6 aborted, -11 segfault). The crash is a race, likelier
on a loaded machine: ``--burn N`` keeps N busy processes running alongside.

    python benchmarks/temporal_exit.py [--rounds 400] [--burn 1]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import socket
import subprocess
import sys

CHILD = """
import asyncio, sys
from corral.cli._exit import Exit
out = Exit() if sys.argv[1] == "corral" else None
from temporalio.client import Client

async def connect() -> None:
    try:
        await Client.connect(f"127.0.0.1:{sys.argv[2]}")
    except RuntimeError:
        pass

asyncio.run(connect())
if out is not None:
    out.now(2)
sys.exit(2)
"""


def _burn() -> None:
    while True:
        pass


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--burn", type=int, default=1, help="busy processes alongside")
    args = parser.parse_args()
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.burn)]
    for burner in burners:
        burner.start()
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    seen: dict[str, collections.Counter[int]] = {"bare": collections.Counter()}
    seen["corral"] = collections.Counter()
    try:
        for r in range(args.rounds):
            for way in ("bare", "corral") if r % 2 == 0 else ("corral", "bare"):
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, way, str(_unused_port())],
                    capture_output=True,
                    check=False,
                )
                seen[way][done.returncode] += 1
    finally:
        for burner in burners:
            burner.terminate()
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    for way, codes in seen.items():
        crashed = sum(n for code, n in codes.items() if code != 2)
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(codes.items()))
        print(f"{way:7} {crashed} of {args.rounds} exits crashed   (status: count) {statuses}")


if __name__ == "__main__":
    main()
