"""Delegation: supervisors hand typed subtasks to their direct reports, and only to them.

A supervisor's model may call ``delegate`` with subtasks (assignee, instruction,
payload). Before anything exists, corral checks that each assignee is a direct
report, that each payload is valid for the assignee's input schema, and the depth and
team-size guards. Then the tasks are created on the board under the workspace guards
(creation rate with cooldown, pending tasks), in one transaction. A round subgraph
fans the subtasks out with ``Send``; all are claimed on the board before any runs, and
their results are recorded together when every subtask has finished (the join). The
supervisor reads the results and delegates again or answers.

A refusal is recorded and, under the ``escalate`` policy, fed back to the supervisor's
model; under ``halt`` it ends the run.
"""

from __future__ import annotations

import json
import logging
import operator
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypedDict

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs

# The config keys through which LangGraph lends a checkpointer and a durability to
# nested graphs (private; langgraph is pinned below 2).
from langgraph._internal._constants import CONFIG_KEY_CHECKPOINTER, CONFIG_KEY_DURABILITY
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel, Field, ValidationError, create_model

from corral.context import AuditLog, ContextStore, ToolCalls
from corral.errors import RunError
from corral.graphs._state import Usage, add_usage
from corral.guards import (
    Alert,
    Breakers,
    BudgetExceeded,
    GuardTripped,
    Ledger,
    Limits,
    NewTask,
    TaskBoard,
)
from corral.manifest._spec import AgentSpec, GuardSpec, ToolSpec
from corral.models import AGENT_KEY, RUN_KEY
from corral.nodes._base import Call, Inbound, Node, Steps, Work
from corral.nodes._function import FunctionRunner
from corral.nodes._handoff import error_lines, validate
from corral.observability import EventLog, Metrics

_NO_USAGE = Usage(input_tokens=0, output_tokens=0, llm_calls=0)


class Runner(Protocol):
    """Anything that answers a piece of work (agent and function runners)."""

    def answer(self, inbound: Inbound, work: Work) -> Steps: ...


class Subtask(BaseModel):
    """One piece of work for a direct report."""

    assignee: str = Field(description="the id of one of your direct reports")
    instruction: str = Field(min_length=1, description="what the report is to do")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="input valid for the assignee's input schema"
    )
    impact: float = Field(default=0, ge=0, le=500, description="declared business impact")
    priority_hint: float = Field(default=0, description="your view of its urgency, -50..50")


@dataclass(frozen=True)
class Report:
    """A direct report as its supervisor sees it."""

    id: str
    role: str
    input_name: str
    input_schema: type[BaseModel]


@dataclass
class Hierarchy:
    """What delegation shares across a team: the board, the events, guards, runners."""

    board: TaskBoard | None
    events: EventLog | None
    guards: GuardSpec
    ledger: Ledger | None = None
    breakers: Breakers | None = None
    on_budget_alert: Callable[[Alert], None] | None = None
    context: ContextStore | None = None
    audit: AuditLog | None = None
    tool_calls: ToolCalls | None = None
    tool_specs: dict[str, ToolSpec] = field(default_factory=dict)
    prompt_chars: int = 2000
    metrics: Metrics | None = None
    runners: dict[str, Runner] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    round_graph: Any = None

    def need(self) -> tuple[TaskBoard, EventLog]:
        """The board and event log; delegation without a workspace is an error."""
        if self.board is None or self.events is None:
            raise RunError(
                "delegation needs a workspace: run the team through team.compile(db=...)"
            )
        return self.board, self.events

    def record_trip(self, work: Work, trip: GuardTripped, policy: str) -> None:
        """Record a guard trip for the run's trace and summary (when there is a workspace)."""
        if self.metrics is not None:
            self.metrics.guard_trips.labels(trip.guard).inc()
        if self.events is not None:
            self.events.record(
                work.run_id,
                "guard_trip",
                trip.agent,
                {
                    "guard": trip.guard,
                    "limit": trip.limit,
                    "seen": trip.seen,
                    "policy": policy,
                    "until": trip.until,
                    "message": str(trip),
                },
            )

    def record(self, work: Work, kind: str, agent: str | None, data: dict[str, Any]) -> None:
        """Record an event of the run (when there is a workspace)."""
        if self.events is not None:
            self.events.record(work.run_id, kind, agent, data)

    def record_alert(self, work: Work, alert: Alert) -> None:
        """A budget alert: an event, a logged warning, and the user's hook."""
        if self.events is not None:
            self.events.record(
                work.run_id,
                "budget_alert",
                alert.agent,
                {
                    "layer": alert.layer,
                    "used": alert.used,
                    "limit": alert.limit,
                    "threshold": alert.threshold,
                    "day": alert.day,
                },
            )
        logging.getLogger("corral.budget").warning(
            "budget alert: %s has used %g of its %s limit %g (threshold %g)",
            alert.agent,
            alert.used,
            alert.layer,
            alert.limit,
            alert.threshold,
        )
        if self.on_budget_alert is not None:
            self.on_budget_alert(alert)

    def limits(self) -> Limits:
        rate = self.guards.task_rate
        return Limits(
            rate_count=rate.count if rate else None,
            rate_seconds=rate.per_seconds if rate else 3600.0,
            cooldown_seconds=self.guards.cooldown_seconds,
            max_pending=self.guards.max_pending_tasks,
        )

    def build_round_graph(self) -> None:
        """The subgraph one delegation round runs: ``Send`` per subtask, then the join."""
        builder = StateGraph(RoundState)
        builder.add_node("subtask", TaskNode(self))
        builder.add_conditional_edges(START, _fan_out, ["subtask"])
        builder.add_edge("subtask", END)
        self.round_graph = builder.compile(checkpointer=_NOTHING, name="delegation_round")


class _KeepNothing(BaseCheckpointSaver[int]):
    """The checkpointer of a delegation round: it keeps nothing.

    A round is ephemeral; the board makes its finished subtasks durable. (With no
    checkpointer at all, LangGraph 1.2.22 raises AttributeError '_put_checkpoint_fut'
    when the round inherits the run's durability "sync", and warns if it is overridden.)
    It holds no state, so one instance serves every round.
    """

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return iter(())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return {"configurable": {**config["configurable"], "checkpoint_id": checkpoint["id"]}}

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        return None

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in list[CheckpointTuple]():
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        return None


_NOTHING = _KeepNothing()


class RoundState(TypedDict, total=False):
    tasks: list[dict[str, Any]]
    results: Annotated[list[dict[str, Any]], operator.add]


def _fan_out(state: RoundState) -> list[Send]:
    return [Send("subtask", task) for task in state["tasks"]]


class Delegation:
    """One supervisor's delegation: its reports, its limits, its ``delegate`` tool."""

    def __init__(
        self, agent: AgentSpec, reports: Mapping[str, Report], hierarchy: Hierarchy
    ) -> None:
        self.agent = agent
        self.reports = dict(reports)
        self.hierarchy = hierarchy
        guards = hierarchy.guards
        self.max_depth = agent.guards.max_delegation_depth or guards.max_delegation_depth
        self.max_subtasks = agent.guards.max_subtasks or guards.max_subtasks
        listed = "; ".join(
            f"{r.id} ({r.role or 'no role'}, input {r.input_name}: "
            f"{json.dumps(r.input_schema.model_json_schema().get('properties'))})"
            for r in self.reports.values()
        )
        self.tool: type[BaseModel] = create_model(
            "delegate",
            __doc__=f"Hand work to your direct reports and get their results back. At most "
            f"{self.max_subtasks} subtasks at once. Your direct reports: {listed}.",
            subtasks=(list[Subtask], Field(min_length=1)),
        )

    def delegate(
        self, args: Any, work: Work, round_no: int, agent: str
    ) -> Generator[Call, Any, tuple[str, Usage]]:
        """Check, create and run one round of subtasks; return what to tell the model."""
        board, events = self.hierarchy.need()
        try:
            subtasks: list[Subtask] = self.tool.model_validate(args).subtasks  # type: ignore[attr-defined]
        except ValidationError as exc:
            return self._refuse(
                work, [], "the delegation is malformed: " + "; ".join(error_lines(exc))
            ), _NO_USAGE
        tasks = [
            NewTask(
                id=f"{work.key}/r{round_no}.{i}",
                run_id=work.run_id,
                parent_id=work.task_id,
                assignee=s.assignee,
                depth=work.depth + 1,
                instruction=s.instruction,
                payload=s.payload,
                impact=s.impact,
                modifier=s.priority_hint,
            )
            for i, s in enumerate(subtasks)
        ]
        problems = self._problems(subtasks)
        if problems:
            return self._refuse(work, tasks, "; ".join(problems)), _NO_USAGE
        trip = None
        if len(tasks) > self.max_subtasks:
            trip = GuardTripped(
                "max_subtasks",
                limit=self.max_subtasks,
                seen=len(tasks),
                agent=agent,
                message=f"{agent!r} handed out {len(tasks)} "
                f"subtasks at once; at most {self.max_subtasks} are allowed",
            )
        elif work.depth + 1 > self.max_depth:
            trip = GuardTripped(
                "max_delegation_depth",
                limit=self.max_depth,
                seen=work.depth + 1,
                agent=agent,
                message=f"a subtask of {agent!r} would be at depth "
                f"{work.depth + 1}; the limit is {self.max_depth}",
            )
        try:
            if trip is not None:
                raise trip
            created = board.create(tasks, self.hierarchy.limits())
        except GuardTripped as exc:
            tripped = exc.with_agent(agent)
            policy = self.hierarchy.guards.policy(tripped.guard)
            self.hierarchy.record_trip(work, tripped, policy)
            board.refuse(tasks, str(tripped))
            if policy == "halt":
                raise tripped from None
            return f"refused: {tripped}. Answer with what you have, or delegate less.", _NO_USAGE
        if self.hierarchy.metrics is not None:
            self.hierarchy.metrics.tasks_created.inc(len(created))
        events.record(
            work.run_id,
            "tasks_created",
            agent,
            {"tasks": [t.id for t in created], "depth": work.depth + 1},
        )
        # Every task of the round is claimed (compare-and-set, one transaction) before
        # any runs; a task done before (a resumed run) is answered from the board.
        claims = board.claim_many(
            [t.id for t in created], work.run_id, self.hierarchy.guards.lease_seconds
        )
        results: list[dict[str, Any]] = []
        refs = []
        for task, claim in zip(created, claims, strict=True):
            if claim is None:
                held = board.get(task.id)
                raise RunError(
                    f"subtask {task.id!r} cannot be claimed: it is "
                    f"{held.status if held else 'missing'}"
                    + (f" by {held.claimer}" if held and held.claimer else ""),
                    agent=task.assignee,
                )
            if claim.status == "done":
                results.append(
                    {
                        "task_id": task.id,
                        "assignee": task.assignee,
                        "status": "done",
                        "result": claim.result,
                        "reused": True,
                    }
                )
                continue
            refs.append(
                {
                    "task_id": task.id,
                    "run_id": work.run_id,
                    "assignee": task.assignee,
                    "depth": task.depth,
                    "instruction": task.instruction,
                    "payload": task.payload,
                    "source": agent,
                }
            )
        if refs:
            # A parent lends its checkpointer to graphs run inside its nodes, and LangGraph
            # prefers the lent one; lend the round the saver that keeps nothing, or a
            # resumed supervisor would be handed the saved results of its last round.
            # Nothing of a round is persisted, so it runs with durability "exit" (no
            # per-subtask saves handed to LangGraph's executor).
            config = merge_configs(
                work.config,
                {
                    "configurable": {
                        CONFIG_KEY_CHECKPOINTER: _NOTHING,
                        CONFIG_KEY_DURABILITY: "exit",
                    }
                },
            )
            state = yield Call(self.hierarchy.round_graph, {"tasks": refs}, config)
            ran = state.get("results", [])
            # The round's results are recorded together at the join (one transaction);
            # a task whose result is recorded is done and never runs again.
            board.finish_many(
                work.run_id,
                [
                    (
                        r["task_id"],
                        r["status"],
                        r.get("result") if r["status"] == "done" else r.get("error"),
                    )
                    for r in ran
                ],
            )
            results += ran
        usage = _NO_USAGE
        shown = []
        for result in sorted(results, key=lambda r: r["task_id"]):
            usage = add_usage(usage, result.pop("usage", None) or _NO_USAGE)
            shown.append(result)
        return "results of your subtasks: " + json.dumps(shown), usage

    def _problems(self, subtasks: list[Subtask]) -> list[str]:
        problems = []
        for s in subtasks:
            report = self.reports.get(s.assignee)
            if report is None:
                problems.append(
                    f"{s.assignee!r} is not your direct report (yours: "
                    f"{', '.join(sorted(self.reports))}); work for anyone else goes through "
                    "your manager"
                )
                continue
            payload, errors = validate(report.input_schema, s.payload)
            if payload is None:
                problems.append(
                    f"the payload for {s.assignee!r} is not a valid "
                    f"{report.input_name}: {'; '.join(errors)}"
                )
        return problems

    def _refuse(self, work: Work, tasks: list[NewTask], reason: str) -> str:
        board, events = self.hierarchy.need()
        board.refuse(tasks, reason)
        events.record(
            work.run_id,
            "delegation_refused",
            self.agent.id,
            {"reason": reason, "tasks": [t.id for t in tasks]},
        )
        return f"refused, nothing was started: {reason}"


def call_config(config: RunnableConfig, agent: str, run_id: str) -> RunnableConfig:
    """The config of an agent's calls: run and agent in metadata, for tracers and scripts."""
    return merge_configs(
        config, {"metadata": {AGENT_KEY: agent, RUN_KEY: run_id}, "tags": [f"corral:agent:{agent}"]}
    )


class TaskNode(Node):
    """Runs one claimed subtask and returns its result or failure (recorded at the join)."""

    name = "subtask"

    def __init__(self, hierarchy: Hierarchy) -> None:
        self.hierarchy = hierarchy

    def steps(self, state: dict[str, Any], config: RunnableConfig) -> Steps:
        task_id = state["task_id"]
        base = {"task_id": task_id, "assignee": state["assignee"]}
        runner = self.hierarchy.runners[state["assignee"]]
        inbound = Inbound(
            schema=self.hierarchy.inputs[state["assignee"]],
            source=state["source"],
            payload=state["payload"],
            instruction=state["instruction"],
        )
        if not isinstance(runner, FunctionRunner):  # only model calls need the metadata
            config = call_config(config, state["assignee"], state["run_id"])
        work = Work(
            run_id=state["run_id"],
            key=task_id,
            depth=state["depth"],
            config=config,
            task_id=task_id,
        )
        started = time.perf_counter()
        try:
            payload, usage = yield from runner.answer(inbound, work)
        except BudgetExceeded as exc:
            if self.hierarchy.guards.policy("budget") == "halt":
                raise
            return {"results": [{**base, "status": "failed", "error": str(exc)}]}
        except GuardTripped:
            raise
        except RunError as exc:  # the supervisor decides what to do with a failed subtask
            return {"results": [{**base, "status": "failed", "error": str(exc)}]}
        spec = runner.plan.agent  # type: ignore[attr-defined]
        floor = spec.min_confidence
        if floor is not None and float(payload.get(spec.confidence_field, 0.0)) < floor:
            return {
                "results": [
                    {
                        **base,
                        "status": "failed",
                        "error": (
                            f"{spec.id!r} answered with {spec.confidence_field} "
                            f"{payload.get(spec.confidence_field)}, below the {floor} required"
                        ),
                        "low_confidence_answer": payload,
                    }
                ]
            }
        if self.hierarchy.metrics is not None:
            self.hierarchy.metrics.node_seconds.labels(state["assignee"]).observe(
                time.perf_counter() - started
            )
        done = {**base, "status": "done", "result": payload, "usage": usage}
        if work.flags.get("degraded"):
            done["degraded"] = True
        return {"results": [done]}
