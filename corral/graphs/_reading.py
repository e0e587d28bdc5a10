"""Reading what a run left, with no runtime: its trace from the workspace alone."""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig

from corral.errors import InputError
from corral.graphs._build import shape_graph
from corral.manifest import TeamPlan
from corral.observability import Trace, model_calls, recorded, steps, subtasks, tool_calls
from corral.workspace import Workspace


def read_trace(plan: TeamPlan, workspace: Workspace, run_id: str) -> Trace:
    """Everything a run did, in order: each agent's input, output and decision, model
    calls, tool calls, guard verdicts, failures, subtasks. Needs no chat model and no
    provider credentials: the history is read through the team's shape, whose states
    leave out the run's path (rebuilt from its ancestors at each of thousands of steps
    of a long run, it would cost more than the rest of the trace)."""
    if workspace.runs.get(run_id) is None:
        raise InputError(f"no run {run_id!r} in {workspace.where}", field="run_id")
    reader = shape_graph(plan, workspace.saver, path=False)
    config: RunnableConfig = {"configurable": {"thread_id": run_id}}
    history = list(reader.get_state_history(config))
    return Trace(
        run_id,
        steps(history, plan.input_name)
        + model_calls(workspace.ledger.calls(run_id))
        + tool_calls(workspace.tool_calls.calls(run_id))
        + recorded(workspace.events.list(run_id))
        + subtasks(workspace.board.tasks(run_id=run_id)),
        workspace.ledger.run_usage(run_id),
    )
