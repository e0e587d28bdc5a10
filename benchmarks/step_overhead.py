"""Per-step cost of a compiled corral team against an equivalent plain LangGraph graph.

Both graphs are 10-node chains doing the same work in each node, run in one process,
interleaved in rounds (plain, corral, plain, corral ...); the median of each side and
the paired ratios of the rounds (median and min) are reported, with the load average. Scenarios:

- function: each node runs the same plain Python function on a 5-field payload.
  Corral adds: typed input object, output validation, routing, a Command handoff.
- agent: each node calls the scripted chat model with structured output.
  Corral adds: prompt building, validation, usage accounting, routing.

Each scenario runs without a checkpointer and with SQLite (plain LangGraph with its
SqliteSaver, corral with its own saver; durability "sync" on both sides; corral's run
also writes its run-registry rows).

    python benchmarks/step_overhead.py [--rounds 7] [--json results.json]
    python benchmarks/step_overhead.py --parts 40   # corral's storage calls, per step
    python benchmarks/step_overhead.py --only agent --storage corral --clock system  # kernel time
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from corral import AgentSpec, EdgeSpec, FlowSpec, SchemaSpec, ScriptedChatModel, Team
from corral.graphs import build_graph, wire
from corral.workspace import CorralSaver

NODES = 10


class Work(BaseModel):
    """The payload every node hands on."""

    ticket: str = Field(min_length=1)
    step: int = Field(ge=0)
    score: float = Field(ge=0, le=1_000_000)
    tags: list[str]
    done: bool


def work(payload: Work) -> dict[str, Any]:
    """The node's work, identical on both sides."""
    return {
        "ticket": payload.ticket,
        "step": payload.step + 1,
        "score": payload.score * 1.01 + 1,
        "tags": [*payload.tags[-3:], str(payload.step)],
        "done": payload.step + 1 >= NODES,
    }


START_PAYLOAD = {"ticket": "T-1", "step": 0, "score": 1.0, "tags": ["a"], "done": False}


def corral_team(kind: str) -> Team:
    ids = [f"n{i}" for i in range(NODES)]
    agents = [
        AgentSpec(id=i, kind="function", function=work)
        if kind == "function"
        else AgentSpec(id=i, role="Worker", instructions="Advance the work.")
        for i in ids
    ]
    edges = [EdgeSpec(from_=a, to=b, schema_name="Work") for a, b in itertools.pairwise(ids)]
    edges.append(EdgeSpec(from_=ids[-1], to="END", schema_name="Work"))
    return Team(
        name=f"bench_{kind}",
        schemas={"Work": SchemaSpec(model=Work)},
        agents=agents,
        flow=FlowSpec(entry=ids[0], input="Work", output="Work", edges=edges),
    )


class PlainState(TypedDict):
    payload: dict[str, Any]


def plain_graph(kind: str, checkpointer: BaseCheckpointSaver[Any] | None) -> Any:
    """The same chain written directly against LangGraph."""
    model = ScriptedChatModel().with_structured_output(Work)

    def function_node(state: PlainState) -> PlainState:
        return {"payload": work(Work.model_validate(state["payload"]))}

    def agent_node(state: PlainState) -> PlainState:
        messages = [
            SystemMessage("You are Worker. Advance the work."),
            HumanMessage("Input:\n```json\n" + json.dumps(state["payload"]) + "\n```"),
        ]
        result = model.invoke(messages)
        assert isinstance(result, Work)
        return {"payload": result.model_dump(mode="json")}

    builder = StateGraph(PlainState)
    ids = [f"n{i}" for i in range(NODES)]
    for node_id in ids:
        builder.add_node(node_id, function_node if kind == "function" else agent_node)
    builder.add_edge(START, ids[0])
    for a, b in itertools.pairwise(ids):
        builder.add_edge(a, b)
    builder.add_edge(ids[-1], END)
    return builder.compile(checkpointer=checkpointer)


def timed(fn: Callable[[int], None], runs: int, clock: Callable[[], float]) -> float:
    """Seconds per step over ``runs`` runs of ``fn``, on ``clock``."""
    start = clock()
    for i in range(runs):
        fn(i)
    return (clock() - start) / (runs * NODES)


def stored(
    kind: str, storage: str, workdir: Path
) -> tuple[Callable[[int], None], Callable[[int], None]]:
    """One run of corral's ``App.run`` and one of plain LangGraph, each storing its
    checkpoints (``storage``: "corral", the same saver on both sides, or "sqlite", plain
    LangGraph on its ``SqliteSaver``); durability "sync" on both."""
    app = corral_team(kind).compile(db=workdir / f"corral-{kind}.db")
    if storage == "corral":  # the same saver on both sides: corral's own
        plain = plain_graph(kind, CorralSaver(workdir / f"plain-corral-{kind}.db"))
    else:
        conn = sqlite3.connect(workdir / f"plain-{kind}.db", check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        plain = plain_graph(kind, SqliteSaver(conn))
    prefix = f"{kind}-{time.monotonic_ns()}"

    def run_corral(i: int) -> None:
        result = app.run(START_PAYLOAD, run_id=f"c-{prefix}-{i}-{time.perf_counter_ns()}")
        assert result.ok

    def run_plain(i: int) -> None:
        plain.invoke(
            {"payload": START_PAYLOAD},
            durability="sync",
            config={"configurable": {"thread_id": f"p-{prefix}-{i}-{time.perf_counter_ns()}"}},
        )

    return run_corral, run_plain


def scenario(
    kind: str, storage: str, rounds: int, workdir: Path, clock: Callable[[], float]
) -> dict[str, Any]:
    runs = {"none": 60 if kind == "function" else 30, "sqlite": 15, "corral": 15}[storage]
    team = corral_team(kind)
    if storage == "none":
        graph = build_graph(team.plan, wire(team.plan))
        first = START_PAYLOAD  # the flow's input: the graph's own input schema
        plain = plain_graph(kind, None)

        def run_corral(_: int) -> None:
            graph.invoke(first)

        def run_plain(_: int) -> None:
            plain.invoke({"payload": START_PAYLOAD})
    else:
        run_corral, run_plain = stored(kind, storage, workdir)

    run_corral(-1)
    run_plain(-1)
    corral_times, plain_times = [], []
    for _ in range(rounds):
        plain_times.append(timed(run_plain, runs, clock))
        corral_times.append(timed(run_corral, runs, clock))
    p, c = statistics.median(plain_times), statistics.median(corral_times)
    ratios = [b / a for a, b in zip(plain_times, corral_times, strict=True)]
    return {
        "scenario": kind,
        "checkpointer": storage,
        "plain_us": p * 1e6,
        "corral_us": c * 1e6,
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
    }


CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    "cpu": time.process_time,
    "user": lambda: resource.getrusage(resource.RUSAGE_SELF).ru_utime,
    "system": lambda: resource.getrusage(resource.RUSAGE_SELF).ru_stime,
}
"""The clocks a step can be timed on (``--clock``)."""

PARTS = {
    "registry": ("runs", ("start", "update", "get")),
    "ledger": ("ledger", ("record", "reserve", "settle")),
    "summary": ("", ("run_summary",)),
    "saver": ("saver", ("put", "put_writes")),
}


def parts(kind: str, runs: int, workdir: Path) -> None:
    """Where corral's run spends its storage time: each bookkeeping method timed in place
    (per step), and the write transactions per run."""
    app = corral_team(kind).compile(db=workdir / f"parts-{kind}.db")
    spent: dict[str, float] = dict.fromkeys(PARTS, 0.0)
    writes = [0]
    for part, (owner, names) in PARTS.items():
        target = getattr(app.workspace, owner) if owner else app.workspace
        for name in names:
            setattr(target, name, _timed(getattr(target, name), spent, part))
    pool = app.workspace.pool
    write = pool.write

    def counted() -> Any:
        writes[0] += 1
        return write()

    pool.write = counted  # type: ignore[method-assign]
    app.run(START_PAYLOAD, run_id=f"warm-{kind}")
    spent.update(dict.fromkeys(PARTS, 0.0))
    writes[0] = 0
    began = time.perf_counter()
    for i in range(runs):
        app.run(START_PAYLOAD, run_id=f"parts-{kind}-{i}")
    total = (time.perf_counter() - began) / (runs * NODES) * 1e6
    shares = "   ".join(f"{k} {v / (runs * NODES) * 1e6:6.1f}" for k, v in spent.items())
    print(
        f"{kind:9} corral {total:7.1f} us/step, of which (us/step): {shares}; "
        f"{writes[0] / runs:.1f} write transactions per run",
        flush=True,
    )
    app.close()


def _timed(fn: Callable[..., Any], spent: dict[str, float], part: str) -> Callable[..., Any]:
    def timed_call(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - began

    return timed_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--only", choices=("function", "agent"), default=None)
    parser.add_argument(
        "--storage",
        choices=("none", "sqlite", "corral"),
        default=None,
        help="corral: plain LangGraph on CorralSaver too (the same saver on both sides)",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time the process's CPU (every thread's) instead of the wall clock: steadier "
        "on a loaded machine",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu", "user", "system"),
        default=None,
        help="user / system: the process's CPU time in Python and in the kernel apart "
        "(--cpu is both)",
    )
    parser.add_argument(
        "--parts", type=int, default=0, metavar="RUNS", help="only time corral's storage calls"
    )
    args = parser.parse_args()
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    clock = CLOCKS[args.clock or ("cpu" if args.cpu else "wall")]
    if args.parts:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in [args.only] if args.only else ["function", "agent"]:
                parts(kind, args.parts, Path(tmp))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in [args.only] if args.only else ["function", "agent"]:
            for storage in [args.storage] if args.storage else ["none", "sqlite"]:
                row = scenario(kind, storage, args.rounds, Path(tmp), clock)
                results.append(row)
                print(
                    f"{kind:9} {storage:7} plain {row['plain_us']:8.1f} us/step   "
                    f"corral {row['corral_us']:8.1f} us/step   paired ratio median "
                    f"{row['ratio']:.2f}x min {row['ratio_min']:.2f}x"
                    + (f" ({args.clock or 'cpu'} time)" if args.cpu or args.clock else ""),
                    flush=True,
                )
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
