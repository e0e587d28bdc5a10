"""``corral serve --temporal``: what the server adds to a run on Temporal workers.

A throwaway Temporal dev server and Postgres workspace, one ``corral worker`` and one
``corral serve --temporal`` (subprocesses); the two-agent team of
``benchmarks/temporal.py`` (two scripted model calls of 200 ms: 0.4 s of waiting a run).
Each round runs, interleaved: ``--runs`` runs at once submitted straight through
``Dispatcher.run`` (no server), the same through the server's ``runs/wait``, and the same
through ``runs/stream`` (``values`` and ``updates``, to the ``end`` event). Reports each
run's seconds (median), the batch's runs/s, and paired ratios server / direct per round.

    python benchmarks/serve_temporal.py [--rounds 5] [--runs 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

from langgraph_sdk import get_client

sys.path.insert(0, str(Path(__file__).parent))
from temporal import SCRIPT, TEAM, TEMPORAL, free_port, ready, workspace

from corral import load_team
from corral.scale import Dispatcher

Timed = Callable[[], Awaitable[None]]


async def batch(count: int, one: Timed) -> tuple[float, list[float]]:
    """Seconds for ``count`` runs at once, and each run's seconds."""
    each: list[float] = []

    async def timed() -> None:
        start = time.perf_counter()
        await one()
        each.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(timed() for _ in range(count)))
    return time.perf_counter() - start, each


def serve(team: Path, db: str, target: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    corral = Path(sys.executable).with_name("corral")
    process = subprocess.Popen(
        [
            *(str(corral), "serve", str(team), "--db", db, "--port", str(port)),
            *("--temporal", target, "--queue", "bench"),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(log.read_text()[-2000:])


async def main(rounds: int, runs: int, folder: Path, db: str) -> None:
    (folder / "team.yaml").write_text(TEAM)
    (folder / "script.yaml").write_text(SCRIPT)
    team_file = folder / "team.yaml"
    port = free_port()
    target = f"127.0.0.1:{port}"
    temporal = subprocess.Popen(
        [
            *(TEMPORAL, "server", "start-dev", "--headless", "--ip", "127.0.0.1"),
            *("--port", str(port), "--http-port", str(free_port())),
            *("--metrics-port", str(free_port()), "--log-level", "error"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    processes: list[subprocess.Popen[bytes]] = [temporal]
    try:
        client = await ready(target)
        processes.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "corral", "worker", str(team_file)),
                    *("--temporal", target, "--db", db, "--queue", "bench", "--max-runs", "50"),
                ],
                stderr=subprocess.DEVNULL,
            )
        )
        server, url = serve(team_file, db, target, folder / "serve.log")
        processes.append(server)
        direct = Dispatcher(client)
        team = load_team(team_file)
        sdk = get_client(url=url)

        async def straight() -> None:
            result = await direct.run(team, {"text": "q"}, queue="bench")
            assert result.status == "completed", result.errors

        async def waited() -> None:
            done = await sdk.runs.wait(None, "pair", input={"text": "q"})
            assert done == {"answer": "checked"}, done

        async def streamed() -> None:
            parts = [
                p
                async for p in sdk.runs.stream(
                    None, "pair", input={"text": "q"}, stream_mode=["values", "updates"]
                )
            ]
            assert parts[-1].event == "end", parts
            assert parts[-2].data == {"answer": "checked"}, parts

        ways = {"direct": straight, "runs/wait": waited, "runs/stream": streamed}
        for one in ways.values():
            await batch(2, one)  # warm every path
        print(f"{runs} runs at once a batch; a run waits 0.4 s on its model; Postgres workspace")
        rates: dict[str, list[float]] = {name: [] for name in ways}
        each: dict[str, list[float]] = {name: [] for name in ways}
        for r in range(rounds):
            line = []
            for name, one in ways.items():
                seconds, times = await batch(runs, one)
                rates[name].append(runs / seconds)
                each[name] += times
                line.append(f"{name} {runs / seconds:5.2f} runs/s")
            print(f"round {r + 1}: " + ", ".join(line) + f"; load {os.getloadavg()[0]:.1f}")
        for name in ways:
            ratios = [a / b for a, b in zip(rates["direct"], rates[name], strict=True)]
            print(
                f"{name:12} a run {statistics.median(each[name]):.3f} s (median), "
                f"{statistics.median(rates[name]):.2f} runs/s; direct / this, paired: "
                f"median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x"
            )
        print(f"load average {os.getloadavg()}")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=8)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="corral-serve-temporal-"))
    try:
        with workspace("postgres", folder) as db:
            asyncio.run(main(options.rounds, options.runs, folder, db))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.flush()
