"""Human review: work waits at the review node until a person approves, edits or rejects.

The node calls LangGraph's ``interrupt``; the run pauses with the request (what, from
whom, to whom, why) and is resumed with a decision. The node that produced the payload
is not run again. Approve lets the payload through (for an escalation: the agent tries
again); edit replaces it with a payload valid for the same schema; reject ends the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END as GRAPH_END
from langgraph.types import Command
from pydantic import BaseModel

from corral.errors import Rejected, ReviewPending, RunError
from corral.keys import DRIVER_KEY
from corral.manifest import END, AgentPlan, validate
from corral.nodes._base import Node, Steps, io
from corral.nodes._handoff import hand_on
from corral.nodes._state import NO_USAGE as _NO_USAGE
from corral.nodes._state import Handoff, TeamState
from corral.observability import review_requested
from corral.review import DEADLINE, ask_person, stamp
from corral.workspace import RunRegistry


def waiting(pause: BaseException) -> list[dict[str, Any]]:
    """What a paused run's record says it waits for: the review its interrupt asks for
    (as a run an App drives records it)."""
    for item in getattr(pause, "args", ((),))[0] or ():
        value = getattr(item, "value", None)
        if isinstance(value, dict):
            return [ReviewPending(dict(value)).to_dict()]
    return []


class ReviewNode(Node):
    """Pauses the run for a person's decision, then carries it out."""

    name = "__review__"

    def __init__(
        self,
        plans: Mapping[str, AgentPlan],
        schemas: Mapping[str, type[BaseModel]],
        runs: RunRegistry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runs = runs
        self.plans = plans
        self.schemas = schemas
        self.clock = clock

    def steps(self, state: TeamState, config: RunnableConfig) -> Steps:
        run_id = str((config.get("configurable") or {}).get("thread_id", ""))
        driven = (config.get("metadata") or {}).get(DRIVER_KEY)
        try:
            command = yield from self._decide(state, config)
        except GraphBubbleUp as pause:
            if run_id and not driven:  # a run started through the graph itself: its record
                yield io(self.runs.update, run_id, "paused", errors=waiting(pause))
            raise
        if command.goto == GRAPH_END and run_id and not driven:
            # A run started through the graph itself ends here: record how.
            update = command.update if isinstance(command.update, dict) else {}
            rejected = update.get("_rejected")
            yield io(
                self.runs.update,
                run_id,
                "failed" if rejected else "completed",
                output=update.get("_output"),
                errors=[Rejected(str(rejected)).to_dict()] if rejected else [],
                usage=state.get("_usage") or _NO_USAGE,
                path=list(state.get("_path") or []),
            )
        return command

    def _edit_problem(
        self, request: Mapping[str, Any]
    ) -> Callable[[Mapping[str, Any]], str | None]:
        """Why an edit of ``request`` is not a valid payload of its schema, or ``None``."""

        def problem(decision: Mapping[str, Any]) -> str | None:
            if decision.get("action") != "edit":
                return None
            _, errors = validate(self.schemas[request["schema"]], decision.get("payload"))
            return (
                f"the edit is not a valid {request['schema']}: " + "; ".join(errors)
                if errors
                else None
            )

        return problem

    def _decide(
        self, state: TeamState, config: RunnableConfig
    ) -> Generator[Any, Any, Command[Any]]:
        request = state.get("_review")
        if request is None:
            raise RunError("the review node was reached with nothing to review")
        try:
            decision = ask_person(stamp(request, self.clock()), self._edit_problem(request))
        except GraphBubbleUp as pause:  # raised only when the run actually pauses
            run_id = str((config.get("configurable") or {}).get("thread_id", ""))
            review_requested(run_id, self.clock(), pause)
            raise
        yield from ()  # a generator like every node body; a review makes no calls
        action = decision.get("action")
        if action == "reject":
            reason = decision.get("reason") or "no reason given"
            who = "the review deadline" if decision.get("by") == DEADLINE else "reviewer"
            return Command(
                goto=GRAPH_END,
                update={"_review": None, "_rejected": f"rejected by {who}: {reason}"},
            )
        if request["kind"] == "escalation" and action == "approve":  # the agent tries again
            return Command(goto=request["source"], update={"_review": None})  # on its input
        payload = request["payload"] if action == "approve" else decision.get("payload")
        checked, errors = validate(self.schemas[request["schema"]], payload)
        if checked is None:  # the App checks edits first; this keeps state clean regardless
            raise RunError(
                f"the reviewed payload is not a valid {request['schema']}: " + "; ".join(errors),
                agent=request["source"],
            )
        if request["kind"] == "escalation":
            return hand_on(self.plans[request["source"]], checked, _NO_USAGE, reviewed=True)
        target = request["target"] or END
        update: TeamState = {
            "_review": None,
            "_handoff": Handoff(
                source=request["source"],
                target=target,
                schema=request["schema"],
                payload=checked,
                checked=True,
            ),
        }
        if target == END:
            update["_output"] = checked
            update.update(checked)  # type: ignore[typeddict-item]  # the graph's output fields
        return Command(goto=GRAPH_END if target == END else target, update=update)
