"""Reading what a run left, with no runtime: its trace from the workspace alone."""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple, PendingWrite
from langgraph.pregel.debug import tasks_w_writes
from langgraph.types import PregelTask

from corral.compat import task_id, task_id_v1
from corral.errors import InputError
from corral.graphs._build import CompiledTeam, shape_graph
from corral.graphs._pinned import pinned_plan
from corral.manifest import TeamPlan
from corral.observability import Trace, model_calls, recorded, steps, subtasks, tool_calls
from corral.workspace import Workspace

_PULL, _PUSH, _TASKS = "__pregel_pull", "__pregel_push", "__pregel_tasks"
_NULL_TASK = "00000000-0000-0000-0000-000000000000"


def read_trace(plan: TeamPlan, workspace: Workspace, run_id: str) -> Trace:
    """Everything a run did, in order: each agent's input, output and decision, model
    calls, tool calls, guard verdicts, failures, subtasks. Needs no chat model and no
    provider credentials (the history is read through the shape of the team it ran under:
    if the team changed since, the definition the run is pinned to, when it still builds;
    else the team as it is now, which leaves out the steps of agents it no longer has)."""
    record = workspace.runs.get(run_id)
    if record is None:
        raise InputError(f"no run {run_id!r} in {workspace.where}", field="run_id")
    then = pinned_plan(plan, record)  # the team it ran under, if it changed since
    renamed = record.manifest is not None and record.manifest == str(plan.source)
    if then is None and record.team != plan.name and not renamed:  # another team's run
        raise InputError(
            f"run {run_id!r} belongs to team {record.team!r}, not {plan.name!r}; read its "
            "trace with its own team",
            field="run_id",
        )
    plan = then or plan
    reader = shape_graph(plan, workspace.saver, path=False)
    config: RunnableConfig = {"configurable": {"thread_id": run_id, "checkpoint_ns": ""}}
    return Trace(
        run_id,
        steps(
            history(reader, list(workspace.saver.list(config))),
            plan.input_name,
            {a.id: a.in_name for a in plan.agents.values() if a.gathers},
            parallel_steps(plan),
        )
        + model_calls(workspace.ledger.calls(run_id))
        + tool_calls(workspace.tool_calls.calls(run_id))
        + recorded(workspace.events.list(run_id))
        + subtasks(workspace.board.tasks(run_id=run_id)),
        workspace.ledger.run_usage(run_id),
    )


def parallel_steps(plan: TeamPlan) -> dict[str, tuple[str, str]]:
    """Where a parallel step's agents hand on, and the schema (their updates carry no
    handoff): a fanning agent to its branches (``a+b``), a branch to its join."""
    return {
        a.id: ("+".join(a.fans_out) if a.fans_out else str(a.joins), a.out_name)
        for a in plan.agents.values()
        if a.fans_out or a.joins is not None
    }


@dataclass(frozen=True)
class _Step:
    """What ``steps`` reads of a LangGraph ``StateSnapshot``."""

    values: dict[str, Any]
    created_at: str
    tasks: Sequence[Any]


def history(reader: CompiledTeam, saved: list[CheckpointTuple]) -> list[Any]:
    """A thread's history, newest first, as ``reader.get_state_history`` gives it for the
    trace (values, time, tasks with their results), built from the saver's checkpoints
    (``saved``, newest first) without rebuilding every state's channels and next tasks.

    A checkpoint followed by a ``loop`` checkpoint made from it finished its step, so
    each of its tasks left writes (output, ``__no_writes__``, error or interrupt); they
    are named by matching their ids with the ids LangGraph gives each node (or ``Send``)
    at that checkpoint, in the order LangGraph prepares them. Any other checkpoint (the
    newest, one followed by an update or a fork, one with writes from outside a task, a
    task no id matches) is read through LangGraph itself."""
    keys = reader.stream_channels_asis
    nodes = [(name, tuple(sorted(node.triggers))) for name, node in reader.nodes.items()]
    found: list[Any] = []
    for newer, item in zip([None, *saved], saved, strict=False):
        step = _fast(item, newer, keys, nodes) or _snapshot(reader, item)
        sent = _sent(item)
        found.append(_Step({**step.values, "_sent": sent}, step.created_at, step.tasks))
    return found


def _sent(item: CheckpointTuple) -> dict[str, Any]:
    """The handoffs a parallel step's ``Send``s at ``item`` carry, by branch (none: not
    a parallel step's): each branch's inbound, the fanning agent's output."""
    sends = item.checkpoint["channel_values"].get(_TASKS) or ()
    return {
        sent.node: sent.arg["_handoff"]
        for sent in sends
        if isinstance(getattr(sent, "arg", None), dict) and "_handoff" in sent.arg
    }


def _fast(
    item: CheckpointTuple,
    newer: CheckpointTuple | None,
    keys: str | Sequence[str],
    nodes: list[tuple[str, tuple[str, ...]]],
) -> _Step | None:
    """The step of ``item`` from what was saved, or ``None`` when it cannot be."""
    parent = newer.parent_config if newer is not None else None
    if (
        newer is None
        or newer.metadata.get("source") != "loop"
        or parent is None
        or parent["configurable"].get("checkpoint_id")
        != item.config["configurable"]["checkpoint_id"]
    ):
        return None
    writes: list[PendingWrite] = item.pending_writes or []
    tasks = _tasks(item, nodes)
    wrote = {w[0] for w in writes}
    if _NULL_TASK in wrote or not wrote <= {t.id for t in tasks}:
        return None
    values = item.checkpoint["channel_values"]
    return _Step(
        values={k: values[k] for k in ([keys] if isinstance(keys, str) else keys) if k in values},
        created_at=item.checkpoint["ts"],
        tasks=tasks_w_writes([t for t in tasks if t.id in wrote], writes, None, keys),
    )


def _tasks(item: CheckpointTuple, nodes: list[tuple[str, tuple[str, ...]]]) -> list[PregelTask]:
    """Every task LangGraph could prepare at ``item`` (each ``Send`` it holds, by index,
    then each node in graph order) with the id LangGraph gives it there."""
    checkpoint = item.checkpoint
    ident = task_id if checkpoint["v"] > 1 else task_id_v1
    key = binascii.unhexlify(checkpoint["id"].replace("-", ""))
    step = str(item.metadata.get("step", -1) + 1)
    tasks = [
        PregelTask(ident(key, node, step, node, _PUSH, str(i)), node, (_PUSH, i))
        for i, sent in enumerate(checkpoint["channel_values"].get(_TASKS) or ())
        if isinstance(node := getattr(sent, "node", None), str)
    ]
    tasks += [
        PregelTask(ident(key, name, step, name, _PULL, *triggers), name, (_PULL, name))
        for name, triggers in nodes
    ]
    return tasks


def _snapshot(reader: CompiledTeam, item: CheckpointTuple) -> Any:
    """One checkpoint's ``StateSnapshot``, the way ``get_state_history`` builds it."""
    config: RunnableConfig = {"configurable": dict(item.config["configurable"])}
    return next(iter(reader.get_state_history(config, limit=1)))
