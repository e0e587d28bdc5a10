"""A team's runs in its workspace: starting, resuming, ending and reading them.

Everything here blocks on storage; the App's async methods call it on worker threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command
from pydantic import BaseModel

from corral.errors import CooldownActive, InputError
from corral.graphs._build import CompiledTeam
from corral.graphs._ending import ending
from corral.graphs._ids import check_run_id, new_run_id
from corral.graphs._result import Progress, RunResult
from corral.keys import RUN_KEY, TEAM_KEY
from corral.manifest import TeamPlan
from corral.nodes import Services, validate
from corral.review import decision, review_schema
from corral.workspace import SqliteWorkspace


class RunBook:
    """Registers, resumes and ends one team's runs, and reads what they left."""

    def __init__(
        self,
        plan: TeamPlan,
        workspace: SqliteWorkspace,
        graph: CompiledTeam,
        services: Services,
        *,
        where: Path,
        clock: Callable[[], float],
    ) -> None:
        self.plan = plan
        self.workspace = workspace
        self.runs = workspace.runs
        self.board = workspace.board
        self.events = workspace.events
        self.graph = graph
        self.services = services
        self.metrics = services.metrics
        self.db_path = where
        self.clock = clock
        self.active: set[str] = set()
        """Runs this process is driving now."""

    def config(self, run_id: str) -> RunnableConfig:
        """The LangGraph config of a run (its thread id is the run id)."""
        return {
            "configurable": {"thread_id": run_id},
            "recursion_limit": self.plan.guards.max_steps,
            "metadata": {TEAM_KEY: self.plan.name, RUN_KEY: run_id},
        }

    def pending(self) -> list[dict[str, Any]]:
        """Runs waiting for a person: run id, kind, source, target, schema, payload, reason."""
        waiting = []
        for record in self.runs.list(limit=1_000_000, status="paused"):
            request = self.review_of(record.run_id)
            if request is not None:
                waiting.append({"run_id": record.run_id, **request})
        return waiting

    def review_of(self, run_id: str) -> dict[str, Any] | None:
        interrupts = self.graph.get_state(self.config(run_id)).interrupts
        return dict(interrupts[0].value) if interrupts else None

    def cooling(self, run_id: str) -> RunResult | None:
        until = self.board.cooldown_until()
        record = self.runs.get(run_id)
        if until is None or record is None or record.status != "halted":
            return None
        when = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
        return RunResult.of(
            record.usage,
            run_id=run_id,
            status="halted",
            output=record.output,
            path=record.path,
            errors=[CooldownActive(until=until, seconds_left=until - self.clock(), when=when)],
        )

    def begin(
        self, input: Mapping[str, Any] | BaseModel, run_id: str | None
    ) -> tuple[str, dict[str, Any]]:
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
        self.active.add(run_id)
        return run_id, self.first_state(payload)

    def first_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        """What a run starts from: the flow's input (the graph's own input schema)."""
        return payload

    def resume_input(
        self,
        run_id: str,
        approve: bool = False,
        reject: str | None = None,
        edit: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | Command[Any] | None:
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
        if run_id in self.active:
            raise InputError(
                f"run {run_id!r} is still running in this process; wait for it to end "
                "before resuming",
                field="run_id",
            )
        request = self.review_of(run_id)
        schema = review_schema(self.plan, request["schema"]) if request is not None else None
        resume = decision(run_id, request, schema, approve=approve, reject=reject, edit=edit)
        holder = self.runs.take_over(run_id)  # one atomic step: exactly one process wins
        if holder is not None:
            raise InputError(
                f"run {run_id!r} is being resumed by process {holder}; wait for it to end",
                field="run_id",
            )
        self.active.add(run_id)
        if resume is not None:
            return Command(resume=resume)
        if self.graph.get_state(self.config(run_id)).created_at is None:
            return self.first_state(record.input)  # crashed before its first checkpoint
        return None

    def end(self, run_id: str, error: BaseException | None, progress: Progress) -> RunResult:
        self.active.discard(run_id)
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
        output = values.get("_output")
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
        path: list[str] = values.get("_path") or []
        self.runs.update(
            run_id, status, output=output, errors=[e.to_dict() for e in errors], path=path
        )
        summary = self.workspace.run_summary(run_id)
        return RunResult.of(
            summary.usage,
            run_id=run_id,
            status=status,
            output=output,
            path=path,
            errors=errors,
            guards_tripped=summary.guard_trips,
            tasks_created=summary.tasks_created,
        )
