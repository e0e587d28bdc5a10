"""One run's delegated subtasks fanned out across Temporal workers: 4 workers vs 1.

A throwaway ``temporal server start-dev`` on free loopback ports; ``corral worker``
processes sharing one workspace (``--db postgres``, the default: a database on a
throwaway Postgres cluster; ``--db sqlite``: one SQLite file), each running at most
``--slots`` subtask activities at once (``--max-subtasks``: a worker's capacity, as a
machine's would be; a round of 1,000 goes out as 200 activities of 5 subtasks). The team:
a lead that delegates its subtasks in rounds of at most 1,000 (the manifest's
``max_subtasks`` ceiling), to a report whose scripted model answers after 200 ms (the
work is waiting, not CPU). Each round of the benchmark runs one such run per size on
the 1-worker and the 4-worker queue in turn (interleaved, alternating which goes first),
and reports subtasks/s and the paired speed-up per size: min and median; and the CPU
a subtask costs (all processes), which caps what 2 cores can do.

    python benchmarks/fanout.py [--sizes 500,1000,2000] [--rounds 3] [--slots 50]
    python benchmarks/fanout.py --probe   # why not interrupts: what a resume re-executes
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import operator
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

from corral import load_team
from corral.scale import Dispatcher

CHUNK = 1000
"""Subtasks per delegation round (``max_subtasks`` allows no more)."""
TEAM = """\
version: 1
name: fan
models:
  default: {use: scripted, script: script.yaml}
schemas:
  Ask: {fields: {question: str}}
  Note: {fields: {text: str}}
agents:
  - {id: lead, role: Lead, output: Note}
  - {id: hand, role: Hand, reports_to: lead, input: Ask, output: Note}
flow:
  entry: lead
  input: Ask
  output: Note
  edges: [{from: lead, to: END, schema: Note}]
guards:
  max_subtasks: 1000
  max_pending_tasks: 100000
  max_llm_calls_per_task: 100
  task_rate: {count: 1000000, per_seconds: 3600}
"""


def script(size: int) -> str:
    """The lead delegates ``size`` subtasks in rounds of ``CHUNK``, then answers."""
    lines = ["agents:", "  lead:"]
    for start in range(0, size, CHUNK):
        lines.append("    - delay: 0.2")
        lines.append("      delegate:")
        lines += [
            f"        - {{assignee: hand, instruction: do {i}, payload: {{question: q{i}}}}}"
            for i in range(start, min(start + CHUNK, size))
        ]
    lines += ["    - {output: {text: all done}, delay: 0.2}", "  hand:"]
    lines += ["    - {output: {text: done}, delay: 0.2}", "then: repeat", ""]
    return "\n".join(lines)


def helpers() -> ModuleType:
    """``benchmarks/temporal.py`` (the dev server, workspace and CPU helpers)."""
    sys.path.insert(0, str(Path(__file__).parent))
    return importlib.import_module("temporal")


async def one_run(runs: Dispatcher, team: Any, queue: str, size: int) -> float:
    """Seconds from submission until the run (``size`` subtasks) completed."""
    start = time.perf_counter()
    result = await runs.run(team, {"question": "q"}, queue=queue)
    seconds = time.perf_counter() - start
    if result.status != "completed" or result.usage["llm_calls"] < size:
        raise RuntimeError(f"the run did not complete its {size} subtasks: {result.errors}")
    return seconds


async def main(sizes: list[int], rounds: int, slots: int, folder: Path, db: str) -> None:
    temporal = helpers()
    port = temporal.free_port()
    target = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            *(temporal.TEMPORAL, "server", "start-dev", "--headless", "--ip", "127.0.0.1"),
            *("--port", str(port), "--http-port", str(temporal.free_port())),
            *("--metrics-port", str(temporal.free_port()), "--log-level", "error"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        client = await temporal.ready(target)
        runs = Dispatcher(client)
        print(
            f"one run fanning out N subtasks (rounds of <= {CHUNK}), a 200 ms scripted model "
            f"call each; {slots} subtask activity slots a worker; workspace "
            f"{'Postgres' if '://' in db else 'SQLite'}; {os.cpu_count()} cores",
            flush=True,
        )
        for size in sizes:
            (folder / str(size)).mkdir()
            file = folder / str(size) / "team.yaml"
            file.write_text(TEAM.replace("name: fan", f"name: f{size}"))
            (folder / str(size) / "script.yaml").write_text(script(size))
            team = load_team(file)
            logs = [folder / str(size) / f"worker-{i}.log" for i in range(5)]
            workers = [  # this size's workers only: 1 on one queue, 4 on the other
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "corral", "worker", str(file)),
                        *("--temporal", target, "--db", db, "--queue", f"w{count}-{size}"),
                        *("--max-subtasks", str(slots)),
                    ],
                    stderr=log.open("w"),
                )
                for count, log in zip((1, 4, 4, 4, 4), logs, strict=True)
            ]
            while not all("worker ready" in log.read_text() for log in logs):
                if any(w.poll() is not None for w in workers):
                    raise RuntimeError("a worker did not start: " + logs[0].read_text())
                await asyncio.sleep(0.2)
            await measure(
                runs,
                team,
                size=size,
                rounds=rounds,
                pids=[server.pid, os.getpid()],
                workers=workers,
            )
            stop(workers)
    finally:
        stop(workers)
        server.terminate()
        server.wait(20)


async def measure(
    runs: Dispatcher,
    team: Any,
    *,
    size: int,
    rounds: int,
    pids: list[int],
    workers: list[subprocess.Popen[bytes]],
) -> None:
    """Interleaved runs of ``size`` subtasks on 1 and 4 workers; print the ratios."""
    temporal = helpers()
    parts = {"server": pids[:1], "client": pids[1:], "workers": [w.pid for w in workers]}
    seen: dict[int, list[float]] = {1: [], 4: []}
    cpu = dict.fromkeys(parts, 0.0)
    for r in range(rounds):
        line = []
        for count in (1, 4) if r % 2 == 0 else (4, 1):
            used = {name: temporal.cpu_seconds(found) for name, found in parts.items()}
            seconds = await one_run(runs, team, f"w{count}-{size}", size)
            for name, found in parts.items():
                cpu[name] += temporal.cpu_seconds(found) - used[name]
            seen[count].append(size / seconds)
            line.append(f"{count}w {seconds:6.1f} s ({size / seconds:6.1f} subtasks/s)")
        load = os.getloadavg()[0]
        print(f"round {r + 1}, N={size}: " + ", ".join(line) + f"; load {load:.1f}", flush=True)
    ratios = [a / b for a, b in zip(seen[4], seen[1], strict=True)]
    split = {name: spent / (2 * rounds * size) for name, spent in cpu.items()}
    per = sum(split.values())
    cores = os.cpu_count() or 1
    print(
        f"N={size}: 4 workers vs 1: median {statistics.median(ratios):.2f}x, min "
        f"{min(ratios):.2f}x; subtasks/s median 1w {statistics.median(seen[1]):.1f}, "
        f"4w {statistics.median(seen[4]):.1f}; CPU a subtask {per * 1000:.1f} ms ("
        + ", ".join(f"{name} {v * 1000:.1f}" for name, v in split.items())
        + f"; Postgres not counted): {cores} cores cap {cores / per:.0f} subtasks/s",
        flush=True,
    )


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)


def probe() -> None:
    """How often LangGraph runs a node whose round of ``Send`` branches each call
    ``interrupt()``, resumed once with every branch's value (the design not taken)."""
    runs = {"supervisor": 0, "subtask": 0}

    class Round(TypedDict, total=False):
        tasks: list[int]
        results: Annotated[list[int], operator.add]

    def subtask(task: int) -> dict[str, Any]:
        runs["subtask"] += 1
        return {"results": [interrupt({"task": task})]}

    inner: Any = StateGraph(Round)
    inner.add_node("subtask", subtask)
    inner.add_conditional_edges(START, lambda s: [Send("subtask", t) for t in s["tasks"]])
    inner.add_edge("subtask", END)
    round_ = inner.compile()

    class Run(TypedDict, total=False):
        out: list[int]

    def supervisor(_: Run) -> Run:
        runs["supervisor"] += 1  # where the supervisor's model calls would be made
        return {"out": round_.invoke({"tasks": [1, 2, 3]})["results"]}

    outer: Any = StateGraph(Run)
    outer.add_node("supervisor", supervisor)
    outer.add_edge(START, "supervisor")
    outer.add_edge("supervisor", END)
    graph = outer.compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "probe"}}
    paused = graph.invoke({}, config)
    answers = {i.id: i.value["task"] * 10 for i in paused["__interrupt__"]}
    done = graph.invoke(Command(resume=answers), config)
    print(
        f"3 subtasks interrupted and resumed with {done['out']}: the supervisor node ran "
        f"{runs['supervisor']} times, the subtasks {runs['subtask']} times"
    )


if __name__ == "__main__":
    if "--probe" in sys.argv:
        probe()
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,2000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slots", type=int, default=50)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="corral-fanout-"))
    try:
        with helpers().workspace(options.db, folder) as db:
            sizes = [int(s) for s in options.sizes.split(",")]
            asyncio.run(main(sizes, options.rounds, options.slots, folder, db))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.flush()
    os._exit(0)  # the Temporal client's threads can abort interpreter teardown
