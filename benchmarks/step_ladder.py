"""Where corral's step cost goes, rung by rung, against plain LangGraph on one saver.

Each rung is the 10-node function chain of ``step_overhead.py`` with one more piece of
what corral does, all on ``CorralSaver`` with durability "sync":

- plain: LangGraph's own chain (static edges, one ``payload`` channel);
- command: the same chain routed by ``Command(goto=...)`` with declared destinations,
  handing a ``_handoff`` dict on (corral's routing, one channel);
- channels: ``TeamState``'s seven channels declared, only ``_handoff`` written;
- path: the step also writes the ``_path`` delta channel (corral's state, whole);
- graph: corral's compiled graph (its nodes: validation, span, metric, event), invoked
  as a driven run, so no registry rows;
- app: ``App.run`` (run registry, the run's span, the drive and its result).

``--callgrind`` counts each rung's instructions under valgrind (all threads; steady
whatever the machine's load; valgrind must be installed), otherwise each rung's process
CPU time is taken in interleaved rounds (ABC..., then reversed) and paired with plain.
``--callgrind --marginal`` counts each rung on chains of 10 and 40 nodes and divides the
difference by 30: the cost of one more step, without the run's fixed costs (its start,
its registry rows, its result).

    python benchmarks/step_ladder.py [--rounds 9] [--runs 15]
    python benchmarks/step_ladder.py --callgrind [--runs 10] [--marginal]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

sys.path.insert(0, str(Path(__file__).parent))
import step_overhead
from step_overhead import NODES, START_PAYLOAD, Work, corral_team, plain_graph, work

from corral.keys import DRIVER_KEY
from corral.nodes import TeamState
from corral.workspace import CorralSaver


class Reads(TypedDict, total=False):
    """What a rung's step reads: its inbound."""

    _handoff: dict[str, Any]


RUNGS = ("plain", "command", "channels", "path", "graph", "app")
Run = Callable[[int], Any]
VALGRIND = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null"]


def _config(tag: str, i: int) -> Any:
    return {"configurable": {"thread_id": f"{tag}-{i}-{time.perf_counter_ns()}"}}


def _routed(state: type, tmp: Path, tag: str, *, path: bool) -> Run:
    """The chain routed by ``Command`` over ``state``'s channels."""
    nodes = step_overhead.NODES
    ids = [f"n{i}" for i in range(nodes)]

    def node(i: int) -> Callable[[Any], Command[str]]:
        goes = ids[i + 1] if i + 1 < nodes else END

        def step(state: Any) -> Command[str]:
            out = work(Work.model_validate(state["_handoff"]["payload"]))
            update: dict[str, Any] = {
                "_handoff": {"source": ids[i], "target": goes, "schema": "Work", "payload": out}
            }
            if path:
                update["_path"] = [ids[i]]
            return Command(goto=goes, update=update)

        return step

    builder = StateGraph(state)
    for i, name in enumerate(ids):
        goes = ids[i + 1] if i + 1 < nodes else END
        builder.add_node(name, node(i), destinations=(goes,), input_schema=Reads)
    builder.add_edge(START, ids[0])
    graph = builder.compile(checkpointer=CorralSaver(tmp / f"{tag}.db"))
    first = {"_handoff": {"source": "input", "target": ids[0], "schema": "Work"}}
    first["_handoff"]["payload"] = START_PAYLOAD
    return lambda i: graph.invoke(first, _config(tag, i), durability="sync")


def rung(name: str, tmp: Path) -> Run:
    """One rung's run (``name`` from ``RUNGS``)."""
    if name == "plain":
        plain = plain_graph("function", CorralSaver(tmp / "plain.db"))
        return lambda i: plain.invoke(
            {"payload": START_PAYLOAD}, _config("p", i), durability="sync"
        )
    if name == "command":
        return _routed(Reads, tmp, "command", path=False)
    if name in ("channels", "path"):
        return _routed(TeamState, tmp, name, path=name == "path")
    app = corral_team("function").compile(db=tmp / f"{name}.db")
    if name == "graph":
        driven = {"metadata": {DRIVER_KEY: True}}
        return lambda i: app.graph.invoke(
            START_PAYLOAD, {**_config("g", i), **driven}, durability="sync"
        )
    return lambda i: app.run(START_PAYLOAD, run_id=f"a-{i}-{time.perf_counter_ns()}")


def one(name: str, runs: int, nodes: int) -> None:
    """Run one rung (a chain of ``nodes``) with callgrind's instrumentation on for the
    timed runs only."""
    step_overhead.NODES = nodes  # the chain's length, read when a rung is built and run
    with tempfile.TemporaryDirectory() as tmp:
        run = rung(name, Path(tmp))
        for i in range(3):
            run(-1 - i)
        toggle = ["callgrind_control", "-i"]
        subprocess.run([*toggle, "on", str(os.getpid())], check=True, capture_output=True)
        for i in range(runs):
            run(i)
        subprocess.run([*toggle, "off", str(os.getpid())], check=True, capture_output=True)


def counted(name: str, runs: int, nodes: int) -> int:
    """Instructions of ``runs`` runs of one rung on a chain of ``nodes``."""
    command = [*VALGRIND, sys.executable, __file__, "--one", name, "--runs", str(runs)]
    done = subprocess.run(
        [*command, "--nodes", str(nodes)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = [line for line in done.stderr.splitlines() if "Collected" in line]
    return int(found[-1].split()[-1])


def callgrind(runs: int, *, marginal: bool) -> None:
    counts: dict[str, float] = {}
    for name in RUNGS:
        if marginal:
            longer = counted(name, runs, 4 * NODES) - counted(name, runs, NODES)
            counts[name] = longer / (runs * 3 * NODES)
        else:
            counts[name] = counted(name, runs, NODES) / (runs * NODES)
        print(_row(name, f"{counts[name] / 1000:8.1f} k instructions/step", counts), flush=True)


def _row(name: str, figure: str, counts: dict[str, float]) -> str:
    before = RUNGS[RUNGS.index(name) - 1] if name != "plain" else name
    ratio = counts[name] / counts["plain"]
    step = (counts[name] - counts[before]) / counts["plain"]
    return f"{name:9} {figure}   {ratio:.3f}x plain   this rung {step:+.1%} of plain"


def cpu(runs: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        contenders = {name: rung(name, Path(tmp)) for name in RUNGS}
        for run in contenders.values():
            for i in range(3):
                run(-1 - i)
        times: dict[str, list[float]] = {name: [] for name in RUNGS}
        for r in range(rounds):
            for name in RUNGS if r % 2 == 0 else RUNGS[::-1]:
                began = time.process_time()
                for i in range(runs):
                    contenders[name](i)
                times[name].append((time.process_time() - began) / (runs * NODES))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name in RUNGS:
        paired = [a / b for a, b in zip(times[name], times["plain"], strict=True)]
        print(
            _row(name, f"{medians[name] * 1e6:7.1f} us/step CPU", medians)
            + f"   paired median {statistics.median(paired):.3f}x min {min(paired):.3f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--callgrind", action="store_true", help="count instructions")
    parser.add_argument(
        "--marginal", action="store_true", help="count one more step (40 nodes less 10)"
    )
    parser.add_argument("--one", choices=RUNGS, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--nodes", type=int, default=NODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.runs, args.nodes)
        return
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.callgrind:
        callgrind(args.runs, marginal=args.marginal)
    else:
        cpu(args.runs, args.rounds)
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
