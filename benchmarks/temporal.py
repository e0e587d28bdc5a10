"""Runs on Temporal workers: runs/s with 1, 2 and 4 worker processes, and what one more
activity costs (why an activity advances a run until it stops, not one node at a time).

A throwaway ``temporal server start-dev`` on free loopback ports; ``corral worker``
processes sharing one workspace (``--db postgres``, the default: a database on a
throwaway Postgres cluster, as the tests start it; ``--db sqlite``: one SQLite file),
each advancing at most ``--slots`` runs at once (a worker's capacity, as a machine's
would be); a two-agent team whose scripted model answers after 200 ms (the work is
waiting, not CPU). Each round submits ``--runs`` runs to the 1-, 2- and 4-worker queues
in turn (interleaved, so load drifts hit all three), and reports the paired speed-up per
round: min and median.

    python benchmarks/temporal.py [--rounds 5] [--runs 32] [--slots 4] [--db postgres|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from corral import load_team
from corral.scale import Dispatcher

TEMPORAL = Path(sys.executable).with_name("temporal")
COUNTS = (1, 2, 4)
TEAM = """\
version: 1
name: pair
models:
  default: {use: scripted, script: script.yaml}
schemas:
  Q: {fields: {text: str}}
  A: {fields: {answer: str}}
agents:
  - {id: drafter, role: Drafter}
  - {id: checker, role: Checker}
flow:
  entry: drafter
  input: Q
  output: A
  edges:
    - {from: drafter, to: checker, schema: A}
    - {from: checker, to: END, schema: A}
"""
SCRIPT = """\
agents:
  drafter: [{output: {answer: drafted}, delay: 0.2}]
  checker: [{output: {answer: checked}, delay: 0.2}]
"""


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds the processes used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def ready(target: str) -> Client:
    for _ in range(150):
        try:
            client = await Client.connect(target)
            await client.count_workflows()
            return client
        except Exception:
            await asyncio.sleep(0.2)
    raise RuntimeError("the Temporal dev server did not start")


async def batch(runs: Dispatcher, team: object, queue: str, count: int) -> float:
    """Seconds from the first submission until every run completed."""
    start = time.perf_counter()
    ids = await asyncio.gather(
        *(runs.submit(team, {"text": "q"}, queue=queue) for _ in range(count))  # type: ignore[arg-type]
    )
    results = await asyncio.gather(*(runs.settled(i) for i in ids))
    seconds = time.perf_counter() - start
    bad = [r.status for r in results if r.status != "completed"]
    if bad:
        raise RuntimeError(f"runs did not complete: {bad}")
    return seconds


@activity.defn(name="noop")
async def noop(n: int) -> int:
    return n


@workflow.defn(name="Hops", sandboxed=False)
class Hops:
    @workflow.run
    async def run(self, hops: int) -> int:
        for i in range(hops):
            await workflow.execute_activity("noop", i, start_to_close_timeout=timedelta(seconds=30))
        return hops


async def activity_cost(client: Client, hops: int = 100) -> float:
    """Milliseconds one more (empty) activity adds to a workflow, end to end."""
    async with Worker(
        client,
        task_queue="hops",
        workflows=[Hops],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await client.execute_workflow(Hops.run, 1, id="hops-warm", task_queue="hops")
        start = time.perf_counter()
        await client.execute_workflow(Hops.run, hops, id="hops", task_queue="hops")
        return (time.perf_counter() - start) * 1000 / hops


async def in_process(team_file: Path, db: Path, runs: int, slots: int) -> float:
    """Seconds for ``runs`` runs in one process, ``slots`` at a time (no Temporal)."""
    with load_team(team_file).compile(db=db) as app:
        gate = asyncio.Semaphore(slots)

        async def one() -> None:
            async with gate:
                result = await app.arun({"text": "q"})
                assert result.ok, result.errors

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(runs)))
        return time.perf_counter() - start


@contextmanager
def workspace(kind: str, folder: Path) -> Iterator[str]:
    """The workers' shared workspace: a fresh Postgres database, or a SQLite file."""
    if kind == "sqlite":
        yield str(folder / "workspace.db")
        return
    sys.path.insert(0, str(Path(__file__).parents[1]))
    cluster = importlib.import_module("tests.workspace.postgres_cluster").cluster
    with cluster() as running, running.database() as url:
        yield url


async def main(rounds: int, runs: int, slots: int, folder: Path, db: str) -> None:
    (folder / "team.yaml").write_text(TEAM)
    (folder / "script.yaml").write_text(SCRIPT)
    team_file = folder / "team.yaml"
    port = free_port()
    target = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            *(TEMPORAL, "server", "start-dev", "--headless", "--ip", "127.0.0.1"),
            *("--port", str(port), "--http-port", str(free_port())),
            *("--metrics-port", str(free_port()), "--log-level", "error"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        client = await ready(target)
        for count in COUNTS:
            for _ in range(count):
                args = ["--temporal", target, "--db", db, "--queue", f"w{count}"]
                args += ["--max-runs", str(slots)]
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "corral", "worker", str(team_file), *args],
                        stderr=subprocess.DEVNULL,
                    )
                )
        time.sleep(8)  # every worker imported and polling
        dispatcher = Dispatcher(client)
        team = load_team(team_file)
        await batch(dispatcher, team, "w4", 8)  # warm every path once
        print(
            f"{runs} runs a round, 2 model calls of 200 ms each a run, {slots} slots a worker;"
            f" workspace {'Postgres' if '://' in db else 'SQLite'}"
        )
        seen: dict[int, list[float]] = {c: [] for c in COUNTS}
        parts = {"server": [server.pid], "workers": [w.pid for w in workers]}
        parts["client"] = [os.getpid()]
        used = {name: cpu_seconds(pids) for name, pids in parts.items()}
        for r in range(rounds):
            line = []
            for count in COUNTS:
                seconds = await batch(dispatcher, team, f"w{count}", runs)
                seen[count].append(runs / seconds)
                line.append(f"{count}w {runs / seconds:5.2f} runs/s")
            print(f"round {r + 1}: " + ", ".join(line) + f"; load {os.getloadavg()[0]:.1f}")
        for count in COUNTS[1:]:
            ratios = [a / b for a, b in zip(seen[count], seen[1], strict=True)]
            print(
                f"{count} workers vs 1: median {statistics.median(ratios):.2f}x, "
                f"min {min(ratios):.2f}x (runs/s median {statistics.median(seen[count]):.2f})"
            )
        print(f"1 worker: median {statistics.median(seen[1]):.2f} runs/s")
        done = rounds * len(COUNTS) * runs
        split = {n: (cpu_seconds(p) - used[n]) / done for n, p in parts.items()}
        per_run = sum(split.values())
        cores = os.cpu_count() or 1
        print(
            f"CPU per run: {per_run * 1000:.0f} ms ("
            + ", ".join(f"{n} {v * 1000:.0f}" for n, v in split.items())
            + f"); {cores} cores cap this machine at {cores / per_run:.1f} runs/s"
        )
        cpu = time.process_time()
        local = await in_process(team_file, folder / "local.db", runs, slots)
        cpu = (time.process_time() - cpu) / runs
        print(
            f"in one process, no Temporal, {slots} at a time: {runs / local:.2f} runs/s, "
            f"{cpu * 1000:.0f} ms CPU per run"
        )
        hop = await activity_cost(client)
        print(f"one more (empty) activity: {hop:.1f} ms; load {os.getloadavg()[0]:.1f}")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(20)
        server.terminate()
        server.wait(20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="corral-temporal-"))
    try:
        with workspace(options.db, folder) as db:
            asyncio.run(main(options.rounds, options.runs, options.slots, folder, db))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.flush()
    os._exit(0)  # the Temporal client's threads can abort interpreter teardown (sdk-python#300)
