"""Delegation costs: guard checks per subtask, a 1,000-subtask fan-out, time to halt.

- guard checks: creating subtasks on the board in rounds of 5, with the workspace
  limits checked (rate, cooldown, pending) against without; the difference per subtask.
- fan-out: a supervisor hands 1,000 subtasks to a worker and reads their results,
  through corral (typed delegation, board claims, results) against the same fan-out
  with plain LangGraph ``Send`` (same scripted model calls, same worker function).
- time to halt: the runaway example; from the moment its first guard trips to the
  moment the run returns halted.

    python benchmarks/delegation.py [--rounds 5] [--width 1000]
"""

from __future__ import annotations

import argparse
import json
import operator
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel

from corral import (
    AgentSpec,
    EdgeSpec,
    FlowSpec,
    GuardSpec,
    ModelSpec,
    SchemaSpec,
    Team,
    load_team,
)
from corral.models import Reply, Script, ScriptedChatModel
from corral.workspace import Limits, NewTask, open_workspace

ROOT = Path(__file__).resolve().parent.parent


class Number(BaseModel):
    value: int


class Total(BaseModel):
    value: int


def double(n: Number) -> Number:
    return Number(value=n.value * 2)


def script(width: int) -> Script:
    subtasks = tuple(
        {"assignee": "worker", "instruction": "double it", "payload": {"value": i}}
        for i in range(width)
    )
    return Script(agents={"boss": (Reply(delegate=subtasks),)}, then="auto")


def corral_team(width: int) -> Team:
    return Team(
        name="fanout",
        schemas={"Number": SchemaSpec(model=Number), "Total": SchemaSpec(model=Total)},
        models={"default": ModelSpec(use="scripted")},
        agents=[
            AgentSpec(id="boss", role="Boss", output="Total"),
            AgentSpec(
                id="worker",
                kind="function",
                function=double,
                reports_to="boss",
                input="Number",
                output="Number",
            ),
        ],
        flow=FlowSpec(
            entry="boss",
            input="Number",
            output="Total",
            edges=[EdgeSpec(from_="boss", to="END", schema_name="Total")],
        ),
        guards=GuardSpec(
            max_subtasks=width, max_pending_tasks=width * 1000, max_llm_calls_per_task=5
        ),
    )


class Fan(TypedDict):
    value: int
    results: Annotated[list[int], operator.add]
    total: int


def plain_graph(model: ScriptedChatModel) -> Any:
    """The same fan-out written directly with LangGraph Send."""
    from corral.nodes import Subtask

    delegate = type("delegate", (BaseModel,), {"__annotations__": {"subtasks": list[Subtask]}})
    ask = model.bind_tools([Total, delegate], tool_choice="any")
    meta = {"metadata": {"corral_agent": "boss", "corral_run": ""}}

    def boss(_: Fan) -> dict[str, Any]:
        return {}

    def plan(_: Fan) -> list[Send]:
        answer = ask.invoke(
            [HumanMessage('Input:\n```json\n{"value": 1}\n```')],
            {**meta, "metadata": {**meta["metadata"], "corral_run": uuid.uuid4().hex}},
        )
        subtasks = answer.tool_calls[0]["args"]["subtasks"]  # type: ignore[attr-defined]
        return [Send("worker", Number.model_validate(s["payload"]).model_dump()) for s in subtasks]

    def worker(item: dict[str, Any]) -> dict[str, Any]:
        return {"results": [double(Number.model_validate(item)).value]}

    def collect(state: Fan) -> dict[str, Any]:
        shown = json.dumps([{"value": v} for v in state["results"]])
        answer = model.with_structured_output(Total).invoke(
            [HumanMessage(f'results: {shown}\n```json\n{{"value": 1}}\n```')]
        )
        return {"total": answer.value}  # type: ignore[union-attr]

    builder = StateGraph(Fan)
    builder.add_node("boss", boss)
    builder.add_node("worker", worker)
    builder.add_node("collect", collect)
    builder.add_edge(START, "boss")
    builder.add_conditional_edges("boss", plan, ["worker"])
    builder.add_edge("worker", "collect")
    builder.add_edge("collect", END)
    return builder.compile()


def fanout(width: int, rounds: int, tmp: Path) -> dict[str, float]:
    app = corral_team(width).compile(
        db=tmp / "fan.db", chat_models={"default": ScriptedChatModel(script=script(width))}
    )
    plain = plain_graph(ScriptedChatModel(script=script(width)))

    def run_corral() -> float:
        start = time.perf_counter()
        result = app.run({"value": 1})
        assert result.ok
        assert result.tasks_created == width
        return (time.perf_counter() - start) * 1e3

    def run_plain() -> float:
        start = time.perf_counter()
        out = plain.invoke({"value": 1, "results": [], "total": 0})
        assert len(out["results"]) == width
        return (time.perf_counter() - start) * 1e3

    run_corral()
    run_plain()
    samples: dict[str, list[float]] = {"plain LangGraph Send": [], "corral": []}
    for _ in range(rounds):
        samples["plain LangGraph Send"].append(run_plain())
        samples["corral"].append(run_corral())
    app.close()
    return {k: statistics.median(v) for k, v in samples.items()}


def guard_checks(n: int, tmp: Path, repeats: int = 5) -> dict[str, float]:
    """Creating ``n`` subtasks in rounds of 5, with and without the workspace limits;
    fresh files for both, interleaved, median of ``repeats``."""
    limits = Limits(rate_count=10 * n, rate_seconds=3600, cooldown_seconds=60, max_pending=10 * n)
    samples: dict[str, list[float]] = {"without guards": [], "with guards": []}
    for rep in range(repeats):
        for label, lim in (("without guards", None), ("with guards", limits)):
            workspace = open_workspace(tmp / f"guards-{rep}-{label.replace(' ', '-')}.db")
            board = workspace.board
            batches = [
                [
                    NewTask(
                        id=f"t{b}.{i}",
                        run_id="r",
                        assignee="w",
                        depth=1,
                        instruction="x",
                        payload={"i": i},
                    )
                    for i in range(5)
                ]
                for b in range(n // 5)
            ]
            start = time.perf_counter()
            for batch in batches:
                board.create(batch, lim)
            samples[label].append((time.perf_counter() - start) / n * 1e6)
            workspace.close()
    return {k: statistics.median(v) for k, v in samples.items()}


def time_to_halt(tmp: Path) -> tuple[float, int]:
    team = load_team(ROOT / "examples" / "runaway" / "team.yaml")
    with team.compile(db=tmp / "runaway.db") as app:
        result = app.run({"goal": "an email"})
        ended = datetime.now(UTC)
        first = app.events.list(result.run_id, "guard_trip")[0]["at"]
    tripped = datetime.fromisoformat(first.replace("Z", "+00:00"))
    assert result.status == "halted"
    return (ended - tripped).total_seconds() * 1e3, result.tasks_created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--width", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        checks = guard_checks(2000, tmp)
        extra = checks["with guards"] - checks["without guards"]
        print(
            f"task creation on the board: {checks['without guards']:.1f} us/subtask without "
            f"guards, {checks['with guards']:.1f} with (guard checks: {extra:.1f} us/subtask)"
        )
        fan = fanout(args.width, args.rounds, tmp)
        ratio = fan["corral"] / fan["plain LangGraph Send"]
        print(
            f"fan-out of {args.width} subtasks: plain LangGraph Send "
            f"{fan['plain LangGraph Send']:.1f} ms/run, corral {fan['corral']:.1f} ms/run, "
            f"ratio {ratio:.2f}x"
        )
        halt_ms, created = time_to_halt(tmp)
        print(
            f"runaway: halted {halt_ms:.1f} ms after its first guard tripped "
            f"({created} tasks created, limit 50)"
        )


if __name__ == "__main__":
    main()
