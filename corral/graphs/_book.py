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

from corral.errors import CooldownActive, InputError, ManifestChanged, ReviewPending, RunError
from corral.graphs._build import CompiledTeam
from corral.graphs._ending import ending
from corral.graphs._ids import check_run_id, new_run_id
from corral.graphs._result import Progress, RunResult
from corral.keys import DRIVER_KEY
from corral.manifest import Change, TeamPlan, diff_definitions
from corral.nodes import Services, validate
from corral.review import DEADLINE, deadline_decision, decision, iso, overdue, review_schema
from corral.workspace import RunRecord, RunStatus, Workspace

_COOLED = ("task_rate", "cooldown")
"""Guards whose halt the workspace's creation cooldown holds until it ends."""


class RunBook:
    """Registers, resumes and ends one team's runs, and reads what they left."""

    def __init__(
        self,
        plan: TeamPlan,
        workspace: Workspace,
        graph: CompiledTeam,
        services: Services,
        *,
        where: Path | str,
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

    def config(self, run_id: str, *, driven: bool = False) -> RunnableConfig:
        """The LangGraph config of a run (its thread id is the run id); ``driven`` marks
        a run the App drives, which registers and ends the run itself. No other run
        metadata: LangGraph copies each key into every checkpoint and every node's
        callbacks (two keys cost 1.7% of a step); tracers get the thread id, and model
        calls their run and agent."""
        config: RunnableConfig = {
            "configurable": {"thread_id": run_id},
            # One over: the flow's own step check halts the run (an event, a trip streamed);
            # LangGraph's limit stays as a backstop for steps that are not agents'.
            "recursion_limit": self.plan.guards.max_steps + 1,
        }
        if driven:
            config["metadata"] = {DRIVER_KEY: True}
        return config

    def pending(self) -> list[dict[str, Any]]:
        """This team's runs waiting for a person: run id, kind, source, target, schema,
        payload, reason, and for a review with a deadline: ``deadline``, ``on_timeout``,
        ``escalated``. Escalated reviews come first."""
        waiting = []
        for record in self.runs.list(limit=1_000_000, status="paused"):
            if record.team != self.plan.name:
                continue
            request = self.review_of(record)
            if request is not None:
                escalated = bool((stored_review(record) or {}).get("escalated"))
                waiting.append({"run_id": record.run_id, **request, "escalated": escalated})
        return sorted(waiting, key=lambda r: not r["escalated"])

    def review_of(self, record: RunRecord) -> dict[str, Any] | None:
        """The review a paused run waits for. Only a paused run waits: LangGraph still
        lists a question answered before its task failed or its process died (the task
        has no output yet), and running that task again gives it the answer it has."""
        if record.status != "paused":
            return None
        interrupts = self.graph.get_state(self.config(record.run_id)).interrupts
        return dict(interrupts[0].value) if interrupts else None

    def cooling(self, run_id: str) -> RunResult | None:
        """A run halted by the creation rate, resumed while its cooldown lasts: it stays
        halted and says when the cooldown ends (``None``: it may go on)."""
        until = self.board.cooldown_until()
        record = self.runs.get(run_id)
        if until is None or record is None or record.status != "halted":
            return None
        if not any(
            e.get("guard") in _COOLED or e.get("type") == "CooldownActive" for e in record.errors
        ):
            return None  # halted by something else (a budget): the cooldown is for creating
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
        taken = self.runs.start(
            run_id,
            plan.name,
            manifest,
            payload,
            fingerprint=plan.fingerprint,
            definition=dict(plan.definition),
        )
        if taken is not None:
            then = (
                "wait for it to end"
                if taken == "running"
                else f"resume it with `corral resume {run_id}`"
            )
            raise InputError(
                f"run {run_id!r} already exists ({taken}); {then} or choose another run id",
                field="run_id",
            )
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
        migrate: bool = False,
    ) -> dict[str, Any] | Command[Any] | None:
        record = self.record_of(run_id)
        if run_id in self.active:
            raise InputError(
                f"run {run_id!r} is still running in this process; wait for it to end "
                "before resuming",
                field="run_id",
            )
        changes = self.changes(record)
        refused = [str(c) for c in changes if not c.compatible]
        if refused and not migrate:
            raise ManifestChanged(run_id, [str(c) for c in changes])
        request = self.review_of(record)
        policy = overdue(request, self.clock())
        if request is not None and policy in ("approve", "reject"):
            if approve or reject is not None or edit is not None:
                raise InputError(
                    f"the review of run {run_id!r} passed its deadline {request['deadline']}, "
                    f"so its policy decides ({policy}); resume it without a decision",
                    field="decision",
                )
            resume: dict[str, Any] | None = deadline_decision(request, policy)
        else:
            schema = review_schema(self.plan, request["schema"]) if request is not None else None
            resume = decision(run_id, request, schema, approve=approve, reject=reject, edit=edit)
        holder = self.runs.take_over(run_id)  # one atomic step: exactly one process wins
        if holder is not None:
            raise InputError(
                f"run {run_id!r} is running in process {holder}; wait for it to end",
                field="run_id",
            )
        self.active.add(run_id)
        if changes:
            self.repin(run_id, changes, migrated=bool(refused))
        if request is not None and resume is not None and resume.get("by") == DEADLINE:
            self.expired(run_id, request, str(policy))
        if resume is not None:
            return Command(resume=resume)
        if self.graph.get_state(self.config(run_id)).created_at is None:
            return self.first_state(record.input)  # crashed before its first checkpoint
        return None

    def record_of(self, run_id: str) -> RunRecord:
        """The run's record, if it is one of this team's runs."""
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
        return record

    def changes(self, record: RunRecord) -> list[Change]:
        """What changed in the team definition since the run was pinned to it."""
        if record.definition is None or record.fingerprint == self.plan.fingerprint:
            return []
        return diff_definitions(record.definition, self.plan.definition)

    def repin(self, run_id: str, changes: list[Change], *, migrated: bool) -> None:
        """Record that the run goes on under a changed team, and pin it to the new one."""
        self.events.record(
            run_id,
            "team_changed",
            None,
            {
                "fingerprint": self.plan.fingerprint,
                "migrated": migrated,
                "changes": [c.to_dict() for c in changes],
            },
        )
        self.runs.pin(run_id, self.plan.fingerprint, dict(self.plan.definition))

    def escalation(self, run_id: str, decided: bool) -> RunResult | None:
        """Escalate a paused run's review whose deadline passed with ``on_timeout:
        escalate`` (once: an event and an audit row), and unless a person ``decided``,
        the paused result that says so. ``None`` when there is nothing to escalate."""
        record = self.runs.get(run_id)
        if record is None or record.status != "paused" or record.team != self.plan.name:
            return None
        request = self.review_of(record)
        if request is None or overdue(request, self.clock()) != "escalate":
            return None
        review = {**request, "escalated": True}
        if not (stored_review(record) or {}).get("escalated"):
            self.expired(run_id, request, "escalate")
            self.runs.update(run_id, "paused", errors=[ReviewPending(review).to_dict()])
        if decided:
            return None
        return RunResult.of(
            record.usage,
            run_id=run_id,
            status="paused",
            output=None,
            path=record.path,
            errors=[ReviewPending(review)],
        )

    def expired(self, run_id: str, request: Mapping[str, Any], policy: str) -> None:
        """Record that the deadline, not a person, decided ``request``: an event and an
        audit row (who: ``deadline``; when: now)."""
        reason = f"no decision by the review deadline {request['deadline']}"
        self.events.record(
            run_id,
            "review_expired",
            request.get("source"),
            {
                "by": DEADLINE,
                "decided": policy,
                "deadline": request["deadline"],
                "decided_at": iso(self.clock()),
                "target": request.get("target"),
            },
        )
        self.workspace.audit.record(
            run_id,
            str(request.get("source") or ""),
            "review",
            scope=DEADLINE,
            target=str(request.get("target") or "END"),
            verdict=policy,
            reason=reason,
        )

    def settle(self, run_id: str, error: BaseException | None) -> None:
        """Record how a run that another driver (the server) ran through the graph ended,
        if no step of it did: it had nothing left to run, or LangGraph raised between steps
        (its step limit). A run already recorded ended is left as it is."""
        record = self.runs.get(run_id)
        if record is None or record.status != "running":
            return
        snapshot = self.graph.get_state(self.config(run_id))
        self.recorded(run_id, error, snapshot, dict(snapshot.values))

    def recorded(
        self, run_id: str, error: BaseException | None, snapshot: Any, values: dict[str, Any]
    ) -> tuple[RunStatus, list[RunError]]:
        """How the run ended (``ending``), written to its record unless another process
        took the run over meanwhile (a stalled worker's retry did): that one records its
        own ending."""
        status, errors = ending(
            run_id,
            error,
            snapshot,
            values,
            max_steps=self.plan.guards.max_steps,
            verdicts=self.services.verdicts,
            events=self.events,
        )
        self.runs.update(
            run_id,
            status,
            output=values.get("_output"),
            errors=[e.to_dict() for e in errors],
            path=values.get("_path") or [],
            owned=True,
        )
        return status, errors

    def end(self, run_id: str, error: BaseException | None, progress: Progress) -> RunResult:
        self.active.discard(run_id)
        self.workspace.release(run_id)  # its checkpointer state goes with it
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
        if progress.handed_over:  # another worker goes on with it: the record stays
            status, errors = "running", [RunError("handed over to another worker")]
        else:
            status, errors = self.recorded(run_id, error, snapshot, values)
        self.metrics.runs.labels(self.plan.name, status).inc()
        output = values.get("_output")
        path: list[str] = values.get("_path") or []
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


def stored_review(record: RunRecord) -> dict[str, Any] | None:
    """The review a paused run's record says it waits for."""
    for error in record.errors:
        if error.get("type") == "ReviewPending" and isinstance(error.get("review"), dict):
            return dict(error["review"])
    return None
