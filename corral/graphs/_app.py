"""``App``: a compiled team bound to its workspace; runs, resumes, lists and traces runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.types import Command
from pydantic import BaseModel

from corral.errors import CooldownActive, InputError, RunError
from corral.graphs._build import CompiledTeam, build_graph, wire
from corral.graphs._ending import ending
from corral.graphs._ids import check_run_id, db_path, new_run_id
from corral.graphs._result import OnStep, Progress, RunResult
from corral.keys import RUN_KEY, TEAM_KEY
from corral.nodes import NO_USAGE, Handoff, TeamState, Usage, validate
from corral.observability import Metrics, Trace, model_calls, recorded, steps, subtasks
from corral.review import decision, review_schema
from corral.workspace import Alert, RunRecord, open_workspace

if TYPE_CHECKING:
    from corral.manifest import TeamSpec


class App:
    """A compiled team. ``graph`` is the LangGraph ``CompiledStateGraph`` itself.

    The run id is LangGraph's thread id, so ``app.graph.get_state(app.config(run_id))``
    and LangGraph's own streaming work on corral runs. The runtime (workspace, services,
    runners) is wired once, here.
    """

    def __init__(
        self,
        team: TeamSpec,
        *,
        db: str | Path | None = None,
        chat_models: Mapping[str, BaseChatModel] | None = None,
        on_budget_alert: Callable[[Alert], None] | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.team = team
        self.plan = plan = team.plan
        self.db_path = db_path(plan, db)
        self.clock = clock
        self.workspace = workspace = open_workspace(
            self.db_path,
            synchronous=plan.checkpoint.synchronous,
            keep=plan.checkpoint.keep,
            clock=clock,
        )
        self.checkpointer = workspace.saver
        self.runs = workspace.runs
        self.board = workspace.board
        self.events = workspace.events
        self.ledger = workspace.ledger
        self.audit = workspace.audit
        self.ledger.publish_limits(
            {a.id: a.budget for a in plan.agents.values() if a.budgeted}, plan.team_budget
        )
        self.services = wire(
            plan, workspace, metrics=metrics, on_budget_alert=on_budget_alert, clock=clock
        )
        self.metrics = self.services.metrics
        self.context = self.services.context
        self.graph: CompiledTeam = build_graph(plan, self.services, chat_models, workspace.saver)
        self._active: set[str] = set()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the workspace connections."""
        self.workspace.close()

    def config(self, run_id: str) -> RunnableConfig:
        """The LangGraph config of a run (its thread id is the run id)."""
        return {
            "configurable": {"thread_id": run_id},
            "recursion_limit": self.plan.guards.max_steps,
            "metadata": {TEAM_KEY: self.plan.name, RUN_KEY: run_id},
        }

    def run(
        self,
        input: Mapping[str, Any] | BaseModel,
        *,
        run_id: str | None = None,
        on_step: OnStep | None = None,
        config: RunnableConfig | None = None,
    ) -> RunResult:
        """Run the team on ``input`` (validated against the flow's input schema).

        Args:
            input: the entry payload.
            run_id: the run's id (LangGraph thread id); a fresh one if not given.
            on_step: called after each node with a ``StepEvent`` (live progress).
            config: extra LangChain config merged in (callbacks, tags, metadata).
        """
        run_id, start = self._begin(input, run_id)
        return self._drive(run_id, start, on_step, config)

    async def arun(
        self,
        input: Mapping[str, Any] | BaseModel,
        *,
        run_id: str | None = None,
        on_step: OnStep | None = None,
        config: RunnableConfig | None = None,
    ) -> RunResult:
        """``run`` for asyncio; concurrent calls in one process are safe."""
        run_id, start = self._begin(input, run_id)
        return await self._adrive(run_id, start, on_step, config)

    def resume(
        self,
        run_id: str,
        *,
        approve: bool = False,
        reject: str | None = None,
        edit: Mapping[str, Any] | None = None,
        on_step: OnStep | None = None,
        config: RunnableConfig | None = None,
    ) -> RunResult:
        """Continue a failed, crashed or paused run from its last checkpoint.

        A run paused for review needs one decision: ``approve=True``, ``reject="why"`` or
        ``edit={...}`` (checked against the payload's schema first; a bad edit raises
        ``InputError`` and the run stays paused). A run halted by the creation rate waits
        out the workspace's cooldown: resumed before it ends, it says when it ends.
        """
        return self._cooling(run_id) or self._drive(
            run_id, self._resume_input(run_id, approve, reject, edit), on_step, config
        )

    async def aresume(
        self,
        run_id: str,
        *,
        approve: bool = False,
        reject: str | None = None,
        edit: Mapping[str, Any] | None = None,
        on_step: OnStep | None = None,
        config: RunnableConfig | None = None,
    ) -> RunResult:
        """``resume`` for asyncio."""
        return self._cooling(run_id) or await self._adrive(
            run_id, self._resume_input(run_id, approve, reject, edit), on_step, config
        )

    def pending(self) -> list[dict[str, Any]]:
        """Runs waiting for a person: run id, kind, source, target, schema, payload, reason."""
        waiting = []
        for record in self.runs.list(limit=1_000_000, status="paused"):
            request = self._review_of(record.run_id)
            if request is not None:
                waiting.append({"run_id": record.run_id, **request})
        return waiting

    def _review_of(self, run_id: str) -> dict[str, Any] | None:
        interrupts = self.graph.get_state(self.config(run_id)).interrupts
        return dict(interrupts[0].value) if interrupts else None

    def _cooling(self, run_id: str) -> RunResult | None:
        until = self.board.cooldown_until()
        record = self.runs.get(run_id)
        if until is None or record is None or record.status != "halted":
            return None
        when = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
        return RunResult(
            run_id=run_id,
            status="halted",
            output=record.output,
            path=record.path,
            usage=record.usage or NO_USAGE,  # type: ignore[arg-type]
            errors=[CooldownActive(until=until, seconds_left=until - self.clock(), when=when)],
        )

    def _run_config(self, run_id: str, extra: RunnableConfig | None) -> RunnableConfig:
        return merge_configs(self.config(run_id), extra) if extra else self.config(run_id)

    def _drive(
        self,
        run_id: str,
        start: TeamState | Command[Any] | None,
        on_step: OnStep | None,
        extra: RunnableConfig | None,
    ) -> RunResult:
        progress = Progress(run_id, on_step, fresh=isinstance(start, dict))
        try:
            for chunk in self.graph.stream(
                start,
                self._run_config(run_id, extra),
                stream_mode="updates",
                durability=self.plan.checkpoint.durability,
            ):
                progress(chunk)
        except Exception as exc:
            return self._end(run_id, exc, progress)
        except BaseException as exc:  # Ctrl-C, cancellation: record, then let it go on
            self._end(run_id, exc, progress)
            raise
        return self._end(run_id, None, progress)

    async def _adrive(
        self,
        run_id: str,
        start: TeamState | Command[Any] | None,
        on_step: OnStep | None,
        extra: RunnableConfig | None,
    ) -> RunResult:
        progress = Progress(run_id, on_step, fresh=isinstance(start, dict))
        try:
            async for chunk in self.graph.astream(
                start,
                self._run_config(run_id, extra),
                stream_mode="updates",
                durability=self.plan.checkpoint.durability,
            ):
                progress(chunk)
        except Exception as exc:
            return self._end(run_id, exc, progress)
        except BaseException as exc:
            self._end(run_id, exc, progress)
            raise
        return self._end(run_id, None, progress)

    def _begin(
        self, input: Mapping[str, Any] | BaseModel, run_id: str | None
    ) -> tuple[str, TeamState]:
        run_id = check_run_id(run_id) if run_id is not None else new_run_id()
        existing = self.runs.get(run_id)
        if existing is not None:
            raise InputError(
                f"run {run_id!r} already exists ({existing.status}); resume it "
                f"with `corral resume {run_id}` or choose another run id",
                field="run_id",
            )
        plan = self.plan
        payload, errors = validate(plan.schemas[plan.input_name], input)
        if payload is None:
            raise InputError(
                f"input is not a valid {plan.input_name}: "
                + "; ".join(errors)
                + f". Fix the input to match the {plan.input_name} schema",
                field=errors[0].split(":")[0],
            )
        manifest = str(plan.source) if plan.source is not None else None
        self.runs.start(run_id, plan.name, manifest, payload)
        self._active.add(run_id)
        return run_id, self._first_state(payload)

    def _first_state(self, payload: dict[str, Any]) -> TeamState:
        plan = self.plan
        return {
            "handoff": Handoff(
                source="input", target=plan.entry, schema=plan.input_name, payload=payload
            ),
            "path": [],
            "usage": NO_USAGE,
            "output": None,
        }

    def _resume_input(
        self,
        run_id: str,
        approve: bool = False,
        reject: str | None = None,
        edit: Mapping[str, Any] | None = None,
    ) -> TeamState | Command[Any] | None:
        record = self.runs.get(run_id)
        if record is None:
            raise InputError(
                f"no run {run_id!r} in {self.db_path}; `corral runs` lists the runs there",
                field="run_id",
            )
        if record.team != self.plan.name:
            raise InputError(
                f"run {run_id!r} belongs to team {record.team!r}, not "
                f"{self.plan.name!r}; resume it with its own team file",
                field="run_id",
            )
        if record.status == "running" and (run_id in self._active or not record.stale):
            raise InputError(
                f"run {run_id!r} is still running (process {record.pid}); wait "
                "for it to end before resuming",
                field="run_id",
            )
        request = self._review_of(run_id)
        schema = review_schema(self.plan, request["schema"]) if request is not None else None
        resume = decision(run_id, request, schema, approve=approve, reject=reject, edit=edit)
        self.runs.update(run_id, "running")
        self._active.add(run_id)
        if resume is not None:
            return Command(resume=resume)
        if self.graph.get_state(self.config(run_id)).created_at is None:
            return self._first_state(record.input)  # crashed before its first checkpoint
        return None

    def _end(self, run_id: str, error: BaseException | None, progress: Progress) -> RunResult:
        self._active.discard(run_id)
        values: dict[str, Any] = {}
        snapshot = None
        if error is None and progress.fresh and not progress.interrupted:
            values = progress.values  # a fresh run that finished: its stream said it all
        else:
            try:
                snapshot = self.graph.get_state(self.config(run_id))
                values = dict(snapshot.values)
            except Exception:  # the error being reported matters more than a failed read
                snapshot = None
        output = values.get("output")
        status, errors = ending(
            run_id,
            error,
            snapshot,
            values,
            max_steps=self.plan.guards.max_steps,
            verdicts=self.services.verdicts,
            events=self.events,
        )
        self.metrics.runs.labels(self.plan.name, status).inc()
        usage: Usage = values.get("usage") or NO_USAGE
        path: list[str] = values.get("path") or []
        self.runs.update(
            run_id,
            status,
            output=output,
            errors=[e.to_dict() for e in errors],
            usage=usage,
            path=path,
        )
        summary = self.workspace.run_summary(run_id)
        return RunResult(
            run_id=run_id,
            status=status,
            output=output,
            path=path,
            usage=usage,
            errors=errors,
            guards_tripped=summary.guard_trips,
            tasks_created=summary.tasks_created,
            cost_usd=summary.cost_usd,
        )

    def trace(self, run_id: str) -> Trace:
        """Everything the run did, in order: each agent's input, output and decision, model
        calls, guard verdicts, failures, subtasks (see ``corral.observability``)."""
        if self.runs.get(run_id) is None:
            raise InputError(f"no run {run_id!r} in {self.db_path}", field="run_id")
        history = list(self.graph.get_state_history(self.config(run_id)))
        return Trace(
            run_id,
            steps(history)
            + model_calls(self.ledger.calls(run_id))
            + recorded(self.events.list(run_id))
            + subtasks(self.board.tasks(run_id=run_id)),
        )

    def list_runs(self, *, limit: int = 100) -> list[RunRecord]:
        """The most recent runs in this workspace."""
        return self.runs.list(limit=limit)


def stored_errors(record: RunRecord) -> list[RunError]:
    """A stored run's errors as typed errors."""
    return [RunError.from_dict(e) for e in record.errors]
