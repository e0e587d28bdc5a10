"""Delegation: supervisors hand typed subtasks to their direct reports, and only to them.

A supervisor's model may call ``delegate`` with subtasks (assignee, instruction,
payload). It is offered ``delegate`` only for the reports that get work by delegation
alone (a report the flow feeds gets its work from the flow), listed compactly: id, role,
input schema, each schema once and without titles. Before anything exists, corral
checks that each assignee is such a report, that each payload is valid for the
assignee's input schema, and the depth and team-size guards. Then the tasks are created
on the board under the workspace guards (creation rate with cooldown, pending tasks), in
one transaction. A round subgraph fans the subtasks out with ``Send``; all are claimed
on the board before any runs, and their results are recorded together when every
subtask has finished (the join). The supervisor reads the results and delegates again
or answers.

A refusal is recorded and, under the ``escalate`` policy, fed back to the supervisor's
model; under ``halt`` it ends the run.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from langchain_core.runnables.config import merge_configs
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field, ValidationError, create_model

from corral.compat import lend
from corral.errors import CallTimeout, GuardTripped, RunError
from corral.guards import deadline_trip, delegation_trip, repeat_trip, time_left
from corral.manifest import AgentPlan, ReportPlan, error_lines, validate
from corral.nodes._base import Call, Work, io
from corral.nodes._prompt import compact
from corral.nodes._round import NOTHING, Round, fanout, outcomes
from corral.nodes._services import Services
from corral.nodes._state import NO_USAGE, Usage, add_usage
from corral.observability import emit, outer_stream, with_span
from corral.workspace import Limits, NewTask


class Subtask(BaseModel):
    """One piece of work for a direct report."""

    assignee: str = Field(description="the id of one of your direct reports")
    instruction: str = Field(min_length=1, description="what the report is to do")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="input valid for the assignee's input schema"
    )
    impact: float = Field(default=0, ge=0, le=500, description="declared business impact")
    priority_hint: float = Field(default=0, description="your view of its urgency, -50..50")


class Delegation:
    """One supervisor's delegation: its reports, its limits, its ``delegate`` tool."""

    def __init__(
        self, plan: AgentPlan, services: Services, round: Round, *, lease: float, limits: Limits
    ) -> None:
        self.plan = plan
        self.limits = limits
        self.reports = {r.id: r for r in plan.delegates_to}
        self.services = services
        self.round = round
        self.lease = lease
        self.max_depth = plan.max_depth
        self.max_subtasks = plan.max_subtasks
        self.tool: type[BaseModel] = create_model(
            "delegate",
            __doc__="Hand work to your direct reports and get their results back, at most "
            f"{self.max_subtasks} subtasks at once. {listing(plan, plan.delegates_to)}",
            subtasks=(list[Subtask], Field(min_length=1)),
        )

    def delegate(
        self, args: Any, work: Work, round_no: int
    ) -> Generator[Call, Any, tuple[str, Usage]]:
        """Check, create and run one round of subtasks; return what to tell the model."""
        agent = self.plan.id
        board, verdicts = self.services.board, self.services.verdicts
        try:
            subtasks: list[Subtask] = self.tool.model_validate(args).subtasks  # type: ignore[attr-defined]
        except ValidationError as exc:
            malformed = "the delegation is malformed: " + "; ".join(error_lines(exc))
            return (yield from self._refuse(work, [], malformed)), NO_USAGE
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
            return (yield from self._refuse(work, tasks, "; ".join(problems))), NO_USAGE
        trip = delegation_trip(
            agent,
            count=len(tasks),
            depth=work.depth + 1,
            max_subtasks=self.max_subtasks,
            max_depth=self.max_depth,
        ) or self._looping(work, subtasks)
        try:  # grants first (one transaction), so a task exists only with its grant
            if trip is not None:
                raise trip
            grants = yield io(self._grant, work, tasks)
            created = yield io(board.create, tasks, self.limits)
        except GuardTripped as exc:
            yield io(self.services.ledger.settle_grants, work.key, [t.id for t in tasks])
            tripped = exc.with_agent(agent)
            policy = self.plan.policy(tripped.guard)
            yield io(verdicts.trip, work.run_id, tripped, policy)
            yield io(board.refuse, tasks, str(tripped))
            if policy == "halt":
                raise tripped from None
            return f"refused: {tripped}. Answer with what you have, or delegate less.", NO_USAGE
        self.services.metrics.tasks_created.inc(len(created))
        for task in created:
            emit(
                {
                    "kind": "subtask_created",
                    "run_id": work.run_id,
                    "at": self.services.clock(),
                    "agent": agent,
                    "task_id": task.id,
                    "assignee": task.assignee,
                    "depth": task.depth,
                    "instruction": task.instruction,
                    "payload": task.payload,
                }
            )
        yield io(
            verdicts.record,
            work.run_id,
            "tasks_created",
            agent,
            {"tasks": [t.id for t in created], "depth": work.depth + 1}
            | ({"grants": grants} if grants else {}),
        )
        # Every task of the round is claimed (compare-and-set, one transaction) before
        # any runs; a task done before (a resumed run) is answered from the board.
        claims = yield io(board.claim_many, [t.id for t in created], work.run_id, self.lease)
        results: list[dict[str, Any]] = []
        refs = []
        for task, claim in zip(created, claims, strict=True):
            if claim is None:
                held = yield io(board.get, task.id)
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
            config = merge_configs(work.config, {"configurable": lend(NOTHING, "exit")})
            if work.span is not None:  # the subtasks' spans nest under this work's
                config = with_span(config, work.span)
            state = yield from self._run_round(work, refs, config)
            ran = state.get("results", [])
            # The round's results are recorded together at the join (one transaction);
            # a task whose result is recorded is done and never runs again.
            yield io(board.finish_many, work.run_id, outcomes(ran))
            results += ran
        # each grant becomes what its subtask spent
        yield io(self.services.ledger.settle_grants, work.key, [t.id for t in tasks])
        usage = NO_USAGE
        shown = []
        for result in sorted(results, key=lambda r: r["task_id"]):
            usage = add_usage(usage, result.pop("usage", None) or NO_USAGE)
            shown.append(result)
        return "results of your subtasks: " + compact(shown), usage

    def _run_round(
        self, work: Work, refs: list[dict[str, Any]], config: Any
    ) -> Generator[Call, Any, Any]:
        """Run the round; the run's deadline stops the wait on it."""
        left = time_left(work.deadline, self.services.clock())
        elsewhere = fanout()
        try:
            if elsewhere is not None:  # on Temporal workers: any worker runs each subtask
                ask = {
                    "round": refs[0]["task_id"].rpartition(".")[0],  # ids are {key}/r{n}.{i}
                    "run_id": work.run_id,
                    "tasks": refs,
                    "deadline": work.deadline,
                }
                return {"results": (yield Call(elsewhere, ask, timeout=left))}
            with outer_stream():  # the round's events belong to this run's stream
                return (yield Call(self.round, {"tasks": refs}, config, timeout=left))
        except CallTimeout:  # the run's deadline passed while its subtasks ran
            assert work.deadline is not None
            now = max(self.services.clock(), work.deadline[0])
            late = deadline_trip(work.deadline, now, agent=self.plan.id, doing="subtasks ran")
            assert late is not None
            policy = self.plan.policy("run_deadline_seconds")
            yield io(self.services.verdicts.trip, work.run_id, late, policy)
            raise late from None

    def _looping(self, work: Work, subtasks: list[Subtask]) -> GuardTripped | None:
        """A trip if a subtask (report, instruction, payload) came too often in this task."""
        trip = None
        for s in subtasks:
            again = {"instruction": s.instruction, "payload": s.payload}
            cap = self.plan.max_repeats
            what = f"delegate to {s.assignee!r}"
            trip = trip or repeat_trip(self.plan.id, work.repeats, what, again, cap)
        return trip

    def _grant(self, work: Work, tasks: list[NewTask]) -> dict[str, int]:
        """Carve each subtask's grant (its report's ``grant``, else an equal share) from
        this task's remaining budget, in one transaction."""
        asks = [
            (t.id, self.reports[t.assignee].grant_share, self.reports[t.assignee].grant_tokens)
            for t in tasks
        ]
        return self.services.ledger.grant(
            agent=self.plan.id, parent=work.key, limit=self.plan.budget.task_tokens, asks=asks
        )

    def _problems(self, subtasks: list[Subtask]) -> list[str]:
        problems = []
        for s in subtasks:
            report = self.reports.get(s.assignee)
            if report is None and s.assignee in {r.id for r in self.plan.reports}:
                problems.append(f"{s.assignee!r} gets its work from the flow, not by delegation")
                continue
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

    def _refuse(self, work: Work, tasks: list[NewTask], reason: str) -> Generator[Call, Any, str]:
        yield io(self.services.board.refuse, tasks, reason)
        yield io(
            self.services.verdicts.record,
            work.run_id,
            "delegation_refused",
            self.plan.id,
            {"reason": reason, "tasks": [t.id for t in tasks]},
        )
        return f"refused, nothing was started: {reason}"


def listing(plan: AgentPlan, reports: tuple[ReportPlan, ...]) -> str:
    """The reports as the ``delegate`` tool lists them: id, role and input schema name;
    then each input schema once, compact and without titles (or a pointer to the
    supervisor's own output tool when it is the same schema)."""
    who = "; ".join(f"{r.id} ({r.role or 'no role'}) takes {r.input_name}" for r in reports)
    schemas = {r.input_name: r.input_schema for r in reports}
    shown = [
        f"{name} is the schema of your `{name}` tool"
        if name == plan.out_name
        else f"{name}: {compact(convert_to_openai_tool(schema)['function']['parameters'])}"
        for name, schema in schemas.items()
    ]
    return f"Your direct reports: {who}. " + ". ".join(shown) + "."
