"""Long runs: loading the latest checkpoint against SqliteSaver, and a corral team's
per-step time, bytes per step and trace over thousands of steps.

One thread is run for N steps (a node that loops on itself) with each saver, then the
latest state is loaded again and again (``graph.get_state``: what every resume and every
step's read does). Contenders are interleaved in each round, in one process, on one
disk; the paired ratio corral / SqliteSaver is printed per round (min and median), with
the machine's load. A load that stays flat as N grows is the point: before this, corral
read every blob of the run on each load.

Then a corral team (one function agent handing a count to itself) runs ``--team-steps``
steps, ``--repeats`` times. For each run: the median step time and the mean bytes stored
per step (checkpoint, metadata, new channel blobs, task writes) over steps 10-110 and
over the last 100 steps, their ratio (late / early; min and median over the repeats;
flat is 1.0), and the seconds ``app.trace()`` takes for the whole run (best of two),
interleaved with its steps read the old way, through ``get_state_history``.

    python benchmarks/long_run.py [--steps 100 1000 2000] [--rounds 7] [--loads 200]
        [--team-steps 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import ormsgpack
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from corral import AgentSpec, EdgeSpec, FlowSpec, GuardSpec, SchemaSpec, StepEvent, Team, WhenSpec
from corral.graphs._build import shape_graph
from corral.observability import steps as step_events
from corral.workspace import CorralSaver


class Loop(TypedDict):
    count: int
    note: str


def loop_graph(checkpointer: Any, steps: int) -> Any:
    def step(state: Loop) -> dict[str, Any]:
        return {"count": state["count"] + 1, "note": f"step {state['count']}"}

    graph = StateGraph(Loop)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda s: END if s["count"] >= steps else "step")
    return graph.compile(checkpointer=checkpointer)


def sqlite_saver(path: Path) -> SqliteSaver:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return SqliteSaver(conn)


def loader(graph: Any, loads: int) -> Callable[[], float]:
    config = {"configurable": {"thread_id": "long"}}

    def measure() -> float:
        start = time.perf_counter()
        for _ in range(loads):
            graph.get_state(config)
        return (time.perf_counter() - start) / loads * 1e3

    return measure


class Count(BaseModel):
    count: int
    limit: int
    done: bool


def count_on(payload: Count) -> dict[str, Any]:
    n = payload.count + 1
    return {"count": n, "limit": payload.limit, "done": n >= payload.limit}


def loop_team(steps: int) -> Team:
    """One function agent handing its count to itself until ``steps``."""
    return Team(
        name="long_loop",
        schemas={"Count": SchemaSpec(model=Count)},
        agents=[AgentSpec(id="loop", kind="function", function=count_on)],
        flow=FlowSpec(
            entry="loop",
            input="Count",
            output="Count",
            edges=[
                EdgeSpec(
                    from_="loop",
                    to="loop",
                    schema_name="Count",
                    when=WhenSpec(field="done", equals=False),
                ),
                EdgeSpec(from_="loop", to="END", schema_name="Count"),
            ],
        ),
        guards=GuardSpec(max_steps=steps + 10),
    )


def bytes_per_step(db: Path, thread_id: str) -> dict[int, int]:
    """Bytes each step's checkpoint added: its row, the blobs of the channel versions it
    introduced, and the task writes stored against it."""
    with sqlite3.connect(db) as conn:
        blobs = {
            (c, v): n
            for c, v, n in conn.execute(
                "SELECT channel, version, length(coalesce(blob, '')) FROM cp_blobs "
                "WHERE thread_id = ?",
                (thread_id,),
            )
        }
        writes = dict(
            conn.execute(
                "SELECT checkpoint_id, sum(length(coalesce(blob, ''))) FROM cp_writes "
                "WHERE thread_id = ? GROUP BY checkpoint_id",
                (thread_id,),
            ).fetchall()
        )
        rows = conn.execute(
            "SELECT checkpoint_id, checkpoint, metadata FROM cp_checkpoints WHERE thread_id = ? "
            "ORDER BY checkpoint_id",
            (thread_id,),
        ).fetchall()
    out: dict[int, int] = {}
    seen: dict[str, Any] = {}
    for checkpoint_id, checkpoint, metadata in rows:
        step = ormsgpack.unpackb(metadata)["step"]
        versions = ormsgpack.unpackb(checkpoint)["channel_versions"]
        new = [(c, str(v)) for c, v in versions.items() if seen.get(c) != v]
        seen = versions
        out[step] = (
            len(checkpoint)
            + len(metadata)
            + sum(blobs.get(k, 0) for k in new)
            + writes.get(checkpoint_id, 0)
        )
    return out


def history_steps(app: Any, run_id: str) -> list[Any]:
    """A trace's steps as they were read before: through LangGraph's
    ``get_state_history``, which rebuilds every state's channels and next tasks."""
    reader = shape_graph(app.plan, app.workspace.saver, path=False)
    config = {"configurable": {"thread_id": run_id}}
    return step_events(list(reader.get_state_history(config)), app.plan.input_name)


def team_run(tmp: Path, steps: int, repeat: int) -> dict[str, float]:
    db = tmp / f"team-{steps}-{repeat}.db"
    app = loop_team(steps).compile(db=db)
    seconds: list[float] = []

    def on_step(event: StepEvent) -> None:
        seconds.append(event.seconds)

    run_id = f"long-{repeat}"
    result = app.run({"count": 0, "limit": steps, "done": False}, run_id=run_id, on_step=on_step)
    assert result.ok
    assert len(result.path) == steps
    traced, through_history = [], []
    for _ in range(2):  # interleaved: the trace, then its steps the old way
        start = time.perf_counter()
        trace = app.trace(run_id)
        traced.append(time.perf_counter() - start)
        assert len(trace.of("step")) == steps
        start = time.perf_counter()
        old = history_steps(app, run_id)
        through_history.append(time.perf_counter() - start)
        assert len([e for e in old if e.kind == "step"]) == steps
    app.close()
    sizes = bytes_per_step(db, run_id)
    early, late = range(10, 110), range(steps - 100, steps)
    return {
        "early_us": statistics.median(seconds[i] for i in early) * 1e6,
        "late_us": statistics.median(seconds[i] for i in late) * 1e6,
        "early_bytes": statistics.mean(sizes[i] for i in early),
        "late_bytes": statistics.mean(sizes[i] for i in late),
        "trace_s": min(traced),
        "history_s": min(through_history),
    }


def team_runs(tmp: Path, steps: int, repeats: int) -> None:
    runs = [team_run(tmp, steps, r) for r in range(repeats)]
    time_ratios = [r["late_us"] / r["early_us"] for r in runs]
    byte_ratios = [r["late_bytes"] / r["early_bytes"] for r in runs]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"team loop of {steps} steps ({repeats} runs; load average {os.getloadavg()[0]:.2f}):\n"
        f"  step time    steps 10-110 {med['early_us']:.0f} us, last 100 {med['late_us']:.0f} us"
        f"  late/early min {min(time_ratios):.2f}x median {statistics.median(time_ratios):.2f}x\n"
        f"  bytes/step   steps 10-110 {med['early_bytes']:.0f} B,"
        f" last 100 {med['late_bytes']:.0f} B"
        f"  late/early min {min(byte_ratios):.2f}x median {statistics.median(byte_ratios):.2f}x\n"
        f"  app.trace()  {med['trace_s']:.2f} s median"
        f" (min {min(r['trace_s'] for r in runs):.2f} s); its steps alone through"
        f" get_state_history {med['history_s']:.2f} s median"
        f" (min {min(r['history_s'] for r in runs):.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 2000])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loads", type=int, default=200)
    parser.add_argument("--team-steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for steps in args.steps:
            graphs = {
                "SqliteSaver": loop_graph(sqlite_saver(tmp / f"lg-{steps}.db"), steps),
                "corral": loop_graph(CorralSaver(tmp / f"corral-{steps}.db"), steps),
            }
            config = {"configurable": {"thread_id": "long"}, "recursion_limit": steps + 10}
            for graph in graphs.values():
                graph.invoke({"count": 0, "note": ""}, config, durability="sync")
            timers = {name: loader(g, args.loads) for name, g in graphs.items()}
            samples: dict[str, list[float]] = {name: [] for name in timers}
            for timer in timers.values():
                timer()  # warm up
            for _ in range(args.rounds):
                for name, timer in timers.items():
                    samples[name].append(timer())
            ratios = [c / s for c, s in zip(samples["corral"], samples["SqliteSaver"], strict=True)]
            print(
                f"{steps:>6} steps: load latest checkpoint  "
                + "  ".join(f"{n} {statistics.median(v):.3f} ms" for n, v in samples.items())
                + f"  corral/SqliteSaver min {min(ratios):.2f}x"
                + f" median {statistics.median(ratios):.2f}x"
            )
        team_runs(tmp, args.team_steps, args.repeats)


if __name__ == "__main__":
    main()
