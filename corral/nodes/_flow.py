"""The flow node: runs an agent on the payload of its inbound edge and hands the answer on."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END as GRAPH_END
from langgraph.types import Command
from opentelemetry.trace import Span
from pydantic import BaseModel

from corral.errors import GuardTripped, InputError, RunError, StepLimitExceeded
from corral.keys import DRIVER_KEY
from corral.manifest import AgentPlan, validate
from corral.nodes._base import Call, Inbound, Node, Runner, Steps, Work, call_config, io
from corral.nodes._handoff import REVIEW, hand_on
from corral.nodes._review import waiting
from corral.nodes._services import Services
from corral.nodes._state import Handoff, ReviewRequest, TeamState, add_usage
from corral.observability import (
    current,
    emit,
    failed,
    listened,
    parent_span,
    review_requested,
    used,
)
from corral.review import stamp


def _shown(goto: Any) -> str:
    """A destination as people write it (``END``, not LangGraph's ``__end__``)."""
    return "END" if goto == GRAPH_END else str(goto)


class FlowNode(Node):
    """One agent of the flow: answer, validate, route, hand on."""

    def __init__(
        self,
        plan: AgentPlan,
        runner: Runner,
        services: Services,
        entry: type[BaseModel] | None = None,
        *,
        max_steps: int = 100,
    ) -> None:
        self.max_steps = max_steps
        """The run's steps (LangGraph's, counted across resumes) before it is halted."""
        self.entry = entry
        """For the entry agent: the flow's input schema, read from the graph's input."""
        self.entry_fields = frozenset(entry.model_fields) if entry is not None else frozenset()
        self.services = services
        self.clock = services.clock
        self.plan = plan
        self.runner = runner
        self.on_failure = plan.on_failure
        self.seconds = services.metrics.node_seconds.labels(plan.id)
        self.name = plan.id

    def _input(self, state: TeamState, run_id: str, driven: bool) -> Generator[Call, Any, Handoff]:
        """The flow's input as the entry agent's inbound; a run started through the graph
        itself is registered here."""
        if self.entry is None:
            raise RunError("a step was reached with no handoff", agent=self.plan.id)
        given = {k: v for k, v in state.items() if k in self.entry_fields}
        payload, errors = validate(self.entry, given)
        if payload is None:
            raise InputError(
                f"input is not a valid {self.plan.in_name}: " + "; ".join(errors),
                field=errors[0].split(":")[0],
            )
        if not driven and (yield io(self.services.runs.get, run_id)) is None:
            plan = self.plan
            yield io(self.services.runs.start, run_id, plan.team, None, payload)
        return Handoff(
            source="input", target=self.plan.id, schema=self.plan.in_name, payload=payload
        )

    def _joined(self, state: TeamState) -> Inbound:
        """A join's inbound: every branch's answer, under its id, checked as one payload."""
        gathered = state.get("_joined") or {}
        payload, errors = validate(self.plan.in_schema, gathered)
        if payload is None:
            raise RunError(
                f"the branches' answers do not make a {self.plan.in_name}: " + "; ".join(errors),
                agent=self.plan.id,
            )
        return Inbound(
            schema=self.plan.in_name, source="+".join(self.plan.gathers), payload=payload
        )

    def steps(self, state: TeamState, config: RunnableConfig) -> Steps:
        run_id = str(config.get("configurable", {}).get("thread_id", ""))
        if (config.get("metadata") or {}).get(DRIVER_KEY) or not run_id:
            try:
                return (yield from self._step(state, config, run_id, driven=True))
            except GraphBubbleUp as pause:  # a tool call waits for a person
                review_requested(run_id, self.clock(), pause)
                raise
        # A run started through the graph itself: nothing else records how it ends.
        try:
            command = yield from self._step(state, config, run_id, driven=False)
        except GraphBubbleUp as pause:  # an interrupt: the run waits for a person
            review_requested(run_id, self.clock(), pause)
            yield io(self.services.runs.update, run_id, "paused", errors=waiting(pause))
            raise
        except InputError:  # the input was refused: no run was started
            raise
        except Exception as exc:
            status = "halted" if isinstance(exc, GuardTripped) else "failed"
            error = exc if isinstance(exc, RunError) else RunError(f"{type(exc).__name__}: {exc}")
            yield io(self.services.runs.update, run_id, status, errors=[error.to_dict()])
            raise
        if command.goto == REVIEW:
            yield io(self.services.runs.update, run_id, "paused")
        return command

    def _step(
        self, state: TeamState, config: RunnableConfig, run_id: str, *, driven: bool
    ) -> Generator[Call, Any, Command[Any]]:
        """One step, within its span (under the run's, which the config carries)."""
        step = config.get("metadata", {}).get("langgraph_step", 0)
        plan = self.plan
        span = self.services.spans.agent(
            parent_span(config), plan.id, run_id, team=plan.team, kind=plan.spec.kind, step=step
        )
        with current(span):
            return (yield from self._work(state, config, run_id, span, driven=driven))

    def _work(
        self, state: TeamState, config: RunnableConfig, run_id: str, span: Span, *, driven: bool
    ) -> Generator[Call, Any, Command[Any]]:
        step = config.get("metadata", {}).get("langgraph_step", 0)
        if step > self.max_steps:  # counted from the run's start: a resume goes on counting
            trip = StepLimitExceeded(self.max_steps)
            yield io(self.services.verdicts.trip, run_id, trip, "halt")
            raise trip
        handoff = state.get("_handoff")
        if self.plan.gathers:  # a join: its inbound is the branches' answers
            handoff = Handoff(source="", target=self.plan.id, schema="", payload={})
        elif handoff is None:  # the first step: the flow's input, from the graph's input
            handoff = yield from self._input(state, run_id, driven)
        agent = self.plan.id
        if self.plan.spec.kind == "agent":  # only model calls need the metadata
            config = call_config(config, agent, run_id)
        work = Work(
            run_id=run_id, key=f"{run_id}:{agent}@{step}", depth=0, config=config, span=span
        )
        inbound = (
            self._joined(state)
            if self.plan.gathers
            else Inbound(
                schema=handoff["schema"], source=handoff["source"], payload=handoff["payload"]
            )
        )
        started = time.perf_counter()
        try:
            payload, usage = yield from self.runner.answer(inbound, work)
        except GuardTripped:
            raise
        except RunError as exc:
            if self.on_failure != "review":
                raise
            # No supervisor above a flow step: a person decides what happens next.
            failed(span, exc)
            request = ReviewRequest(
                kind="escalation",
                source=agent,
                target=None,
                schema=self.plan.out_name,
                payload=handoff["payload"],
                reason=str(exc),
            )
            return Command(goto=REVIEW, update={"_review": request})
        seconds = time.perf_counter() - started
        self.seconds.observe(seconds)
        degraded = bool(work.flags.get("degraded"))
        command = hand_on(self.plan, payload, usage, degraded=degraded)
        if self.plan.gathers and isinstance(command.update, dict):
            command.update["_joined"] = None  # the answers are taken up
        reviewed = isinstance(command.update, dict) and command.update.get("_review")
        if reviewed:  # its deadline kept in state: the review node runs again at each resume
            command.update["_review"] = stamp(reviewed, self.clock())  # type: ignore[index]
        decision = "to review" if reviewed else f"-> {_shown(command.goto)}"
        used(span, usage, decision=decision, degraded=degraded)
        if listened():  # an event no one will see is not made
            emit(
                {
                    "kind": "step",
                    "run_id": run_id,
                    "at": self.clock(),
                    "agent": agent,
                    "inbound_schema": inbound.schema,
                    "inbound": inbound.payload,
                    "output": payload,
                    "output_schema": self.plan.out_name,
                    "decision": decision,
                    "seconds": round(seconds, 6),
                    "input_tokens": usage["input_tokens"],
                    "output_tokens": usage["output_tokens"],
                    "llm_calls": usage["llm_calls"],
                    "degraded": degraded,
                }
            )
        if command.goto == GRAPH_END and not driven:
            yield io(
                self.services.runs.update,
                run_id,
                "completed",
                output=payload,
                errors=[],  # a failed run resumed through the graph: its old error is over
                usage=add_usage(state.get("_usage"), usage),
                path=[*state.get("_path", []), agent],
            )
        return command
