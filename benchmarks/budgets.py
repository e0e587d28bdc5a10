"""What budgets cost: a reservation plus settlement per model call, and the whole budget
layer per agent step against the same team with budgets off.

    python benchmarks/budgets.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from corral import AgentSpec, BudgetSpec, EdgeSpec, FlowSpec, SchemaSpec, Team
from corral.graphs import build_graph, wire
from corral.workspace import BudgetLimits, open_workspace

NODES = 10


def team(budgeted: bool) -> Team:
    ids = [f"a{i}" for i in range(NODES)]
    budget = (
        BudgetSpec(
            max_output_tokens=200, max_task_tokens=50_000, max_task_calls=5, daily_tokens=10**9
        )
        if budgeted
        else None
    )
    edges = [EdgeSpec(from_=a, to=b, schema_name="Note") for a, b in pairwise(ids)]
    edges.append(EdgeSpec(from_=ids[-1], to="END", schema_name="Note"))
    return Team(
        name="chain",
        schemas={"Note": SchemaSpec(fields={"text": "str"})},
        agents=[AgentSpec(id=i, role="Writer", budget=budget) for i in ids],
        flow=FlowSpec(entry=ids[0], input="Note", output="Note", edges=edges),
    )


def reserve_settle(tmp: Path, calls: int) -> float:
    """Microseconds for one reservation plus its settlement, every layer set."""
    ledger = open_workspace(tmp / "ledger.db").ledger
    limits = BudgetLimits(
        task_tokens=10**9,
        task_calls=10**9,
        daily_tokens=10**12,
        daily_cost=10**6,
        team_daily_tokens=10**12,
        team_daily_cost=10**6,
    )
    start = time.perf_counter()
    for i in range(calls):
        row = ledger.reserve(
            run_id="r",
            task_key=f"t{i % 50}",
            agent=f"a{i % 10}",
            model="scripted",
            tokens=500,
            cost=0.0,
            limits=limits,
        )
        ledger.settle(
            row,
            agent=f"a{i % 10}",
            model="scripted",
            input_tokens=300,
            output_tokens=120,
            cached_tokens=0,
            cost=0.0,
            latency_ms=1.0,
            limits=limits,
        )
    return (time.perf_counter() - start) / calls * 1e6


def step_cost(tmp: Path, rounds: int, runs: int) -> dict[str, float]:
    """Microseconds per agent step: budgets checked before each call vs no budget (calls
    are only recorded)."""
    graphs: dict[str, Any] = {}
    for label, budgeted in (("budgets off", False), ("budgets on", True)):
        workspace = open_workspace(tmp / f"{label.replace(' ', '-')}.db")
        plan = team(budgeted).plan
        graphs[label] = build_graph(plan, wire(plan, workspace), None, workspace.saver)
    first = {"text": "hello"}  # the flow's input
    samples: dict[str, list[float]] = {k: [] for k in graphs}
    counter = 0
    for _ in range(rounds + 1):
        for label, graph in graphs.items():
            start = time.perf_counter()
            for _ in range(runs):
                counter += 1
                graph.invoke(
                    first, {"configurable": {"thread_id": f"{label}-{counter}"}}, durability="sync"
                )
            samples[label].append((time.perf_counter() - start) / (runs * NODES) * 1e6)
    return {k: statistics.median(v[1:]) for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        per_call = reserve_settle(tmp, 2000)
        print(f"reservation + settlement: {per_call:.1f} us per model call (all layers set)")
        steps = step_cost(tmp, args.rounds, 20)
        off, on = steps["budgets off"], steps["budgets on"]
        print(
            f"agent step (scripted model, SQLite checkpoints): budgets off {off:.1f} us, "
            f"budgets on {on:.1f} us: +{on - off:.1f} us ({on / off:.2f}x)"
        )


if __name__ == "__main__":
    main()
