"""What serving costs: 1,000 runs over HTTP (``corral serve``, ``POST /runs/wait``) at
concurrency 200, against the same load through ``app.arun`` in one process, on a
one-agent team whose scripted model waits 200 ms per call. Reports runs/s, p50/p99 run
latency, the ratio to the ideal (waves x steps x latency), and ``/ok``'s p99 while loaded.
Contenders interleave (HTTP with each ``--workers`` count, in-process, then again...);
ratios are paired per round. ``--workers 1 0``: one worker process against the graphs in
a thread of the HTTP process.

    python benchmarks/server.py [--runs 1000] [--concurrency 200] [--rounds 2] [--workers 1 0]
    python benchmarks/server.py --startup 4 --workers 0 1 2   # start-up to the first /ok
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

from corral import load_team

LATENCY = 0.2
IDLE = 3.0
"""Seconds of probing ``/ok`` before the load: its latency on an idle server is the floor
this machine's load sets."""
STEPS = 1
TEAM = f"""\
version: 1
name: desk
models:
  default: {{use: scripted, params: {{latency: {LATENCY}}}}}
schemas:
  Question: {{fields: {{text: str}}}}
  Answer: {{fields: {{text: str}}}}
agents:
  - {{id: answerer, role: Answerer}}
flow:
  entry: answerer
  input: Question
  output: Answer
  edges: [{{from: answerer, to: END, schema: Answer}}]
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def over_http(url: str, runs: int, concurrency: int) -> dict[str, Any]:
    """``runs`` stateless runs (``POST /runs/wait``), ``concurrency`` at a time, while
    another process probes ``/ok`` every 20 ms."""
    limits = httpx.Limits(max_connections=concurrency + 10, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                answer = await client.post(
                    "/runs/wait", json={"assistant_id": "desk", "input": {"text": f"q{i}"}}
                )
                answer.raise_for_status()
            except httpx.HTTPError as exc:  # counted, and said: never hidden
                failures.append(repr(exc))
                return
            assert answer.json()["text"], answer.text
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        stop, (theirs, ours) = multiprocessing.Event(), multiprocessing.Pipe()
        prober = multiprocessing.Process(target=probe, args=(url, stop, theirs))
        prober.start()
        await asyncio.sleep(IDLE)  # /ok on the idle server first: the machine's own delay
        begun, started = time.monotonic(), time.perf_counter()
        await asyncio.gather(*(one(client, i) for i in range(runs)))
        wall, ended = time.perf_counter() - started, time.monotonic()
        stop.set()
        probes, failed = ours.recv()
        prober.join()
    return {
        "wall": wall,
        "latencies": latencies,
        "ok": [took for at, took in probes if begun <= at <= ended],
        "idle_ok": [took for at, took in probes if at < begun],
        "failures": failures + failed,
    }


def probe(url: str, stop: Any, out: Any) -> None:
    """``GET /ok`` every 20 ms until ``stop``, in a process of its own (so the load's
    client does not delay it): (when sent, latency) of each, and the failures."""
    probes: list[tuple[float, float]] = []
    failures: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            at, started = time.monotonic(), time.perf_counter()
            try:
                client.get("/ok").raise_for_status()
                probes.append((at, time.perf_counter() - started))
            except httpx.HTTPError as exc:
                failures.append(f"/ok: {exc!r}")
            time.sleep(0.02)
    out.send((probes, failures))


async def in_process(app: Any, runs: int, concurrency: int) -> dict[str, Any]:
    """The same load through ``app.arun`` in this process."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            result = await app.arun({"text": f"q{i}"})
            assert result.ok, result.errors
            latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(i) for i in range(runs)))
    return {
        "wall": time.perf_counter() - started,
        "latencies": latencies,
        "cpu": time.process_time() - cpu,
    }


def cpu_seconds(group: int) -> tuple[float, float]:
    """User + system CPU seconds of a process group's leader and of its other live
    processes (the server's workers), from Linux ``/proc``."""
    leader = others = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) != group:
            continue
        used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if stat.parent.name == str(group):
            leader += used
        else:
            others += used
    return leader, others


def serve(folder: Path, round_: int, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    corral = Path(sys.executable).with_name("corral")
    command = [str(corral), "serve", str(folder / "team.yaml"), "--workers", str(workers)]
    db = folder / f"http{round_}w{workers}.db"
    process = subprocess.Popen(
        [*command, "--db", str(db), "--port", str(port)],
        stdout=(folder / f"server{round_}.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=1):
                return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start") from None
            time.sleep(0.2)


def line(name: str, found: dict[str, Any], runs: int, ideal: float) -> str:
    lat = found["latencies"]
    runs = len(lat)  # the runs that succeeded
    return (
        f"{name:<12} {runs / found['wall']:7.1f} runs/s   p50 {pct(lat, 50) * 1000:6.0f} ms   "
        f"p99 {pct(lat, 99) * 1000:6.0f} ms   wall {found['wall']:5.2f} s = "
        f"{found['wall'] / ideal:4.2f}x ideal"
    )


def loaded(folder: Path, round_: int, workers: int, args: Any) -> dict[str, Any]:
    """One HTTP contender: ``corral serve --workers N`` under the load (CPU counted from
    when it answers ``/ok``: its start-up is not the load's)."""
    process, url = serve(folder, round_, workers)
    try:
        mine, (server, workers_) = time.process_time(), cpu_seconds(process.pid)  # started
        http = asyncio.run(over_http(url, args.runs, args.concurrency))
        http["client_cpu"] = time.process_time() - mine
        server_now, workers_now = cpu_seconds(process.pid)
        http["server_cpu"], http["workers_cpu"] = server_now - server, workers_now - workers_
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    return http


def startup(rounds: int, counts: list[int]) -> None:
    """Seconds from starting ``corral serve --workers N`` (the chain test team) to its
    first ``/ok`` answer, each count in turn, ``rounds`` times."""
    team = Path(__file__).parents[1] / "tests" / "fixtures" / "chain" / "team.yaml"
    corral = Path(sys.executable).with_name("corral")
    seen: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for workers in counts:
                port, started = free_port(), time.perf_counter()
                command = [str(corral), "serve", str(team), "--workers", str(workers)]
                db = ["--db", f"{tmp}/s{round_}w{workers}.db", "--port", str(port)]
                process = subprocess.Popen(
                    [*command, *db],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                while True:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=1):
                            break
                    except OSError:
                        if process.poll() is not None:
                            raise SystemExit("the server did not start") from None
                        time.sleep(0.05)
                seen[workers].append(time.perf_counter() - started)
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
            print(f"round {round_ + 1}, load average {os.getloadavg()}")
    for workers, found in seen.items():
        print(f"start-up with --workers {workers}: {spread(found, ' s')}")


def spread(values: list[float], unit: str = "", scale: float = 1.0) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low * scale:.1f}-{high * scale:.1f}{unit} (median {mid * scale:.1f}{unit})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 0],
        help="worker-process counts to serve with, interleaved (0: a thread)",
    )
    parser.add_argument(
        "--startup", type=int, metavar="ROUNDS", help="only time start-up, ROUNDS times"
    )
    args = parser.parse_args()
    if args.startup:
        startup(args.startup, sorted(set(args.workers)))
        return
    ideal = math.ceil(args.runs / args.concurrency) * STEPS * LATENCY
    print(f"{args.runs} runs, concurrency {args.concurrency}, {STEPS} step x {LATENCY}s model:")
    print(f"ideal wall {ideal:.2f} s ({args.runs / ideal:.0f} runs/s)")
    print(f"load average before: {os.getloadavg()}")
    ratios: list[float] = []
    seen: dict[int, list[dict[str, Any]]] = {n: [] for n in args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "team.yaml").write_text(TEAM)
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}, load average {os.getloadavg()}")
            for workers in args.workers:
                http = loaded(folder, round_, workers, args)
                seen[workers].append(http)
                print(line(f"http w={workers}", http, args.runs, ideal))
                if http["failures"]:
                    print(f"FAILED requests: {len(http['failures'])}, e.g. {http['failures'][0]}")
                ok, idle = http["ok"], http["idle_ok"]
                print(
                    f"  CPU s: HTTP process {http['server_cpu']:.1f}, workers "
                    f"{http['workers_cpu']:.1f}, client {http['client_cpu']:.1f}; /ok during "
                    f"load: {len(ok)} probes, p50 {pct(ok, 50) * 1000:.1f} ms, p99 "
                    f"{pct(ok, 99) * 1000:.1f} ms, max {max(ok) * 1000:.1f} ms; idle first: "
                    f"p99 {pct(idle, 99) * 1000:.1f} ms"
                )
            team = load_team(folder / "team.yaml")
            with team.compile(db=folder / f"local{round_}.db") as app:
                local = asyncio.run(in_process(app, args.runs, args.concurrency))
            print(line("app.arun", local, args.runs, ideal) + f"   CPU {local['cpu']:.1f} s")
            ratios.append(seen[args.workers[0]][-1]["wall"] / local["wall"])
    for workers, found in seen.items():
        oks = [pct(h["ok"], 99) for h in found]
        under = sum(o < 0.05 for o in oks)
        print(
            f"w={workers}: runs/s {spread([len(h['latencies']) / h['wall'] for h in found])}, "
            f"p50 {spread([pct(h['latencies'], 50) for h in found], ' s')}, "
            f"p99 {spread([pct(h['latencies'], 99) for h in found], ' s')}, "
            f"/ok p99 {spread(oks, ' ms', 1000)}, under 50 ms in {under}/{len(oks)}"
        )
    first = seen[args.workers[0]]
    for workers in args.workers[1:]:
        other = seen[workers]
        ok = [pct(a["ok"], 99) / pct(b["ok"], 99) for a, b in zip(first, other, strict=True)]
        speed = [b["wall"] / a["wall"] for a, b in zip(first, other, strict=True)]
        print(
            f"w={args.workers[0]} / w={workers}, paired: /ok p99 {spread(ok, 'x')}, "
            f"runs/s {spread(speed, 'x')}"
        )
    print(
        f"http w={args.workers[0]} / in-process wall, paired: min {min(ratios):.2f}x, "
        f"median {statistics.median(ratios):.2f}x"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
