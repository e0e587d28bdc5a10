"""A delegation round: a subgraph that fans claimed subtasks out with ``Send`` and joins.

The round is ephemeral: the task board makes its finished subtasks durable, so the
round's checkpointer keeps nothing. Under ``fanning_out`` (Temporal workers set it), a
round's claimed subtasks are handed to that fan-out instead (they run on any worker,
each as this round run with one task) and the join takes their results unchanged.
"""

from __future__ import annotations

import operator
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send
from opentelemetry.trace import Span

from corral.errors import BudgetExceeded, GuardTripped, RunError
from corral.nodes._base import Call, Inbound, Node, Runner, Steps, Work, call_config
from corral.nodes._state import NO_USAGE
from corral.observability import Metrics, Spans, current, emit, failed, parent_span, used
from corral.workspace import TaskStatus

_ESCALATED = ("run_deadline_seconds", "max_llm_calls_per_task")
"""Guards a subtask trips whose ``escalate`` sends it back to its supervisor as failed."""


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


NOTHING = _KeepNothing()

Fanout = Callable[[dict[str, Any]], Awaitable[list[dict[str, Any]]]]
"""Runs a round's subtasks elsewhere: given ``{"round", "run_id", "tasks", "deadline"}``,
the results (one per task, as the round's ``subtask`` node returns them)."""

_FANOUT: ContextVar[Fanout | None] = ContextVar("corral_fanout", default=None)


@contextmanager
def fanning_out(fanout: Fanout | None) -> Iterator[None]:
    """Within the block, delegation rounds hand their subtasks to ``fanout`` (``None``:
    they run in this process, as they do by default)."""
    token = _FANOUT.set(fanout)
    try:
        yield
    finally:
        _FANOUT.reset(token)


def fanout() -> Fanout | None:
    """The fan-out rounds hand their subtasks to here, if any (see ``fanning_out``)."""
    return _FANOUT.get()


def outcomes(results: list[dict[str, Any]]) -> list[tuple[str, TaskStatus, Any]]:
    """A round's results as the board records them: (task id, status, result or error)."""
    return [
        (r["task_id"], r["status"], r.get("result") if r["status"] == "done" else r.get("error"))
        for r in results
    ]


class RoundState(TypedDict, total=False):
    """What a round carries: the claimed subtasks in, their results out."""

    tasks: list[dict[str, Any]]
    results: Annotated[list[dict[str, Any]], operator.add]


def _fan_out(state: RoundState) -> list[Send]:
    return [Send("subtask", task) for task in state["tasks"]]


Round = CompiledStateGraph[RoundState, None, RoundState, RoundState]


def round_graph(
    runners: Mapping[str, Runner], metrics: Metrics, clock: Callable[[], float], spans: Spans
) -> Round:
    """The subgraph one delegation round runs: ``Send`` per subtask, then the join."""
    builder = StateGraph(RoundState)
    builder.add_node("subtask", TaskNode(runners, metrics, clock, spans))
    builder.add_conditional_edges(START, _fan_out, ["subtask"])
    builder.add_edge("subtask", END)
    return builder.compile(checkpointer=NOTHING, name="delegation_round")


class TaskNode(Node):
    """Runs one claimed subtask and returns its result or failure (recorded at the join)."""

    name = "subtask"

    def __init__(
        self,
        runners: Mapping[str, Runner],
        metrics: Metrics,
        clock: Callable[[], float],
        spans: Spans,
    ) -> None:
        self.runners = runners
        self.metrics = metrics
        self.clock = clock
        self.spans = spans
        self.seconds: dict[str, Any] = {}  # labelled timers, looked up once per assignee

    def steps(self, state: dict[str, Any], config: RunnableConfig) -> Steps:
        started = time.perf_counter()
        span = self.spans.agent(
            parent_span(config),  # the span of the step or subtask that delegated it
            state["assignee"],
            state["run_id"],
            task_id=state["task_id"],
            depth=state["depth"],
            delegator=state["source"],
        )
        with current(span):
            outcome = yield from self._outcome(state, config, span)
            used(span, outcome.get("usage") or NO_USAGE, status=outcome["status"])
            if outcome["status"] == "failed":
                failed(span, str(outcome.get("error")), "subtask_failed")
        emit(
            {
                "kind": "subtask_finished",
                "run_id": state["run_id"],
                "at": self.clock(),
                "agent": state["assignee"],
                "task_id": outcome["task_id"],
                "assignee": outcome["assignee"],
                "status": outcome["status"],
                "result": outcome.get("result"),
                "error": outcome.get("error"),
                "seconds": round(time.perf_counter() - started, 6),
            }
        )
        return {"results": [outcome]}

    def _outcome(
        self, state: dict[str, Any], config: RunnableConfig, span: Span
    ) -> Generator[Call, Any, dict[str, Any]]:
        """The subtask's result, or why it failed (for its supervisor)."""
        task_id = state["task_id"]
        base = {"task_id": task_id, "assignee": state["assignee"]}
        runner = self.runners[state["assignee"]]
        plan = runner.plan
        inbound = Inbound(
            schema=plan.in_name,
            source=state["source"],
            payload=state["payload"],
            instruction=state["instruction"],
        )
        if plan.spec.kind == "agent":  # only model calls need the metadata
            config = call_config(config, state["assignee"], state["run_id"])
        work = Work(
            run_id=state["run_id"],
            key=task_id,
            depth=state["depth"],
            config=config,
            task_id=task_id,
            span=span,
        )
        started = time.perf_counter()
        try:
            payload, usage = yield from runner.answer(inbound, work)
        except BudgetExceeded as exc:
            if plan.policy("budget") == "halt":
                raise
            return {**base, "status": "failed", "error": str(exc)}
        except GuardTripped as exc:  # the deadline or the calls under escalate: told above
            if exc.guard not in _ESCALATED or plan.policy(exc.guard) == "halt":
                raise
            return {**base, "status": "failed", "error": str(exc)}
        except RunError as exc:  # the supervisor decides what to do with a failed subtask
            return {**base, "status": "failed", "error": str(exc)}
        spec = plan.spec
        floor = spec.min_confidence
        if floor is not None and float(payload.get(spec.confidence_field, 0.0)) < floor:
            return {
                **base,
                "status": "failed",
                "error": (
                    f"{spec.id!r} answered with {spec.confidence_field} "
                    f"{payload.get(spec.confidence_field)}, below the {floor} required"
                ),
                "low_confidence_answer": payload,
            }
        timer = self.seconds.get(state["assignee"])
        if timer is None:
            timer = self.seconds[state["assignee"]] = self.metrics.node_seconds.labels(
                state["assignee"]
            )
        timer.observe(time.perf_counter() - started)
        done = {**base, "status": "done", "result": payload, "usage": usage}
        if work.flags.get("degraded"):
            done["degraded"] = True
        return done
