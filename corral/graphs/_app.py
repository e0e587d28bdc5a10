"""``App``: a compiled team bound to its workspace database; runs, resumes, lists runs."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.errors import GraphRecursionError
from langgraph.types import Command
from pydantic import BaseModel

from corral.checkpoints import DEFAULT_DB, CorralSaver, RunRecord, RunStatus, Workspace
from corral.context import AuditLog, ContextStore, ToolCalls
from corral.errors import InputError, RunError
from corral.graphs._build import CompiledTeam, build_graph
from corral.graphs._result import NO_USAGE, OnStep, Progress, RunResult
from corral.graphs._state import Handoff, TeamState, Usage
from corral.guards import Alert, GuardTripped
from corral.guards._ledger import TEAM
from corral.manifest._team import Team
from corral.nodes import Hierarchy, validate
from corral.observability import Metrics, Trace, model_calls, recorded, steps, subtasks

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class App:
    """A compiled team. ``graph`` is the LangGraph ``CompiledStateGraph`` itself.

    The run id is LangGraph's thread id, so ``app.graph.get_state(app.config(run_id))``
    and LangGraph's own streaming work on corral runs.
    """

    def __init__(
        self,
        team: Team,
        *,
        db: str | Path | None = None,
        chat_models: Mapping[str, BaseChatModel] | None = None,
        on_budget_alert: Callable[[Alert], None] | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.team = team
        self.db_path = _db_path(team, db)
        self.workspace = Workspace(
            self.db_path,
            synchronous=team.checkpoint.synchronous,
            keep=team.checkpoint.keep,
            clock=clock,
        )
        self.checkpointer: CorralSaver = self.workspace.saver
        self.runs = self.workspace.runs
        self.board = self.workspace.board
        self.events = self.workspace.events
        self.ledger = self.workspace.ledger
        self.metrics = metrics or Metrics()
        self.audit = AuditLog(self.workspace.pool, clock=clock)
        self.context = ContextStore(
            self.db_path,
            team.name,
            self.audit,
            clock=clock,
            note_ttl=team.context.note_ttl_seconds,
            on_denied=lambda denied, run_id: self.events.record(
                run_id, "permission_denied", denied.agent, denied.to_dict()
            ),
        )
        self.ledger.publish_limits(_daily_limits(team))
        self.graph: CompiledTeam = build_graph(
            team,
            chat_models,
            self.checkpointer,
            Hierarchy(
                board=self.board,
                events=self.events,
                guards=team.guards,
                ledger=self.ledger,
                breakers=self.workspace.breakers,
                on_budget_alert=on_budget_alert,
                context=self.context,
                audit=self.audit,
                tool_calls=ToolCalls(self.workspace.pool, clock=clock),
                metrics=self.metrics,
            ),
        )
        self._active: set[str] = set()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the workspace connections."""
        self.context.close()
        self.workspace.close()

    def config(self, run_id: str) -> RunnableConfig:
        """The LangGraph config of a run (its thread id is the run id)."""
        return {
            "configurable": {"thread_id": run_id},
            "recursion_limit": self.team.guards.max_steps,
            "metadata": {"corral_team": self.team.name, "corral_run": run_id},
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

    def _status(
        self, run_id: str, error: BaseException | None, snapshot: Any, values: dict[str, Any]
    ) -> tuple[RunStatus, list[dict[str, Any]]]:
        """How a run ended, and why when it did not complete."""
        status: RunStatus
        errors: list[dict[str, Any]] = []
        output = values.get("output")
        if isinstance(error, GraphRecursionError):
            status = "halted"
            limit = self.team.guards.max_steps
            self.events.record(
                run_id, "guard_trip", None, {"guard": "max_steps", "limit": limit, "policy": "halt"}
            )
            self.metrics.guard_trips.labels("max_steps").inc()
            errors.append(
                {
                    "type": "StepLimit",
                    "agent": None,
                    "message": f"the run took more than guards.max_steps={limit} steps; the flow "
                    "may loop: check its routing or raise max_steps",
                }
            )
        elif isinstance(error, GuardTripped):
            status = "halted"
            errors.append(error.to_dict())
            halts = [e for e in self.events.list(run_id, "guard_trip") if e.get("policy") == "halt"]
            # A cooldown follows a rate trip, and concurrent subtasks can record it first.
            first = next(
                (e for e in halts if e["guard"] != "cooldown"), halts[0] if halts else None
            )
            if first is not None and first.get("message") != str(error):
                # Concurrent subtasks can trip after the cause; name the cause first.
                errors.insert(
                    0,
                    {
                        "type": "GuardTripped",
                        "agent": first["agent"],
                        "message": first["message"],
                        "guard": first["guard"],
                        "limit": first["limit"],
                        "seen": first.get("seen"),
                        "until": first.get("until"),
                    },
                )
        elif error is not None:
            status = "failed"
            errors.append(
                error.to_dict()
                if isinstance(error, RunError)
                else {
                    "type": type(error).__name__,
                    "agent": None,
                    "message": str(error) or type(error).__name__,
                }
            )
        elif snapshot is not None and snapshot.interrupts:
            status = "paused"
            request = snapshot.interrupts[0].value
            errors.append(
                {
                    "type": "ReviewPending",
                    "agent": request.get("source"),
                    "message": f"waiting for a person ({request.get('kind')}): "
                    f"{request.get('reason')}",
                    "review": request,
                }
            )
        elif values.get("rejected"):
            status = "failed"
            errors.append({"type": "Rejected", "agent": None, "message": values["rejected"]})
        elif snapshot is not None and snapshot.next:
            status = "paused"
        elif output is not None:
            status = "completed"
        else:
            status = "failed"
            errors.append(
                {"type": "NoOutput", "agent": None, "message": "the run ended without reaching END"}
            )
        return status, errors

    def _cooling(self, run_id: str) -> RunResult | None:
        until = self.board.cooldown_until()
        record = self.runs.get(run_id)
        if until is None or record is None or record.status != "halted":
            return None
        when = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
        left = until - time.time()
        message = (
            f"the workspace is cooling down after the task creation rate was reached; "
            f"resume after {when} (in {left:.0f} s)"
        )
        return RunResult(
            run_id=run_id,
            status="halted",
            output=record.output,
            path=record.path,
            usage=record.usage or NO_USAGE,  # type: ignore[arg-type]
            errors=[{"type": "Cooldown", "agent": None, "message": message, "until": until}],
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
                durability=self.team.checkpoint.durability,
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
                durability=self.team.checkpoint.durability,
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
        flow = self.team.flow
        payload, errors = validate(self.team.resolved.schemas[flow.input], input)
        if payload is None:
            raise InputError(
                f"input is not a valid {flow.input}: "
                + "; ".join(errors)
                + f". Fix the input to match the {flow.input} schema",
                field=errors[0].split(":")[0],
            )
        manifest = str(self.team.source) if self.team.source is not None else None
        self.runs.start(run_id, self.team.name, manifest, payload)
        self._active.add(run_id)
        return run_id, self._first_state(payload)

    def _first_state(self, payload: dict[str, Any]) -> TeamState:
        flow = self.team.flow
        return {
            "handoff": Handoff(
                source="input", target=flow.entry, schema=flow.input, payload=payload
            ),
            "path": [],
            "usage": NO_USAGE,
            "output": None,
        }

    def _decision(
        self, run_id: str, approve: bool, reject: str | None, edit: Mapping[str, Any] | None
    ) -> Command[Any] | None:
        """The resume command for a review decision (``None`` if none was given)."""
        given = [
            name
            for name, value in (("approve", approve), ("reject", reject), ("edit", edit))
            if value not in (False, None)
        ]
        request = self._review_of(run_id)
        if request is None:
            if given:
                raise InputError(
                    f"run {run_id!r} is not waiting for a review; resume it without --{given[0]}",
                    field=given[0],
                )
            return None
        if len(given) != 1:
            raise InputError(
                f"run {run_id!r} waits for a review ({request['reason']}); "
                "decide with exactly one of approve, reject or edit",
                field="decision",
            )
        if edit is not None:
            _, errors = validate(self._review_schema(request["schema"]), edit)
            if errors:
                raise InputError(
                    f"the edit is not a valid {request['schema']}: "
                    + "; ".join(errors)
                    + ". The run is still waiting for a "
                    "review",
                    field=errors[0].split(":")[0],
                )
        action = given[0]
        return Command(
            resume={
                "action": action,
                "reason": reject,
                "payload": dict(edit) if edit is not None else None,
            }
        )

    def _review_schema(self, name: str) -> type[BaseModel]:
        """The schema an edit must fit: a payload schema, or a tool's arguments."""
        if name.startswith("tool:"):
            schema = self.team.resolved.tools[name[5:]].args_schema
            assert isinstance(schema, type)
            assert issubclass(schema, BaseModel)
            return schema
        return self.team.resolved.schemas[name]

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
        if record.team != self.team.name:
            raise InputError(
                f"run {run_id!r} belongs to team {record.team!r}, not "
                f"{self.team.name!r}; resume it with its own team file",
                field="run_id",
            )
        if record.status == "running" and (run_id in self._active or not record.stale):
            raise InputError(
                f"run {run_id!r} is still running (process {record.pid}); wait "
                "for it to end before resuming",
                field="run_id",
            )
        decision = self._decision(run_id, approve, reject, edit)
        self.runs.update(run_id, "running")
        self._active.add(run_id)
        if decision is not None:
            return decision
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
        status, errors = self._status(run_id, error, snapshot, values)
        self.metrics.runs.labels(self.team.name, status).inc()
        usage: Usage = values.get("usage") or NO_USAGE
        path: list[str] = values.get("path") or []
        self.runs.update(run_id, status, output=output, errors=errors, usage=usage, path=path)
        with self.workspace.pool.read() as conn:  # one snapshot for the run's summary
            cost, _ = self.ledger.run_cost(run_id, conn=conn)
            trips = self.events.list(run_id, "guard_trip", conn=conn)
            created = self.board.created(run_id, conn=conn)
        guards = [{k: v for k, v in e.items() if k not in ("kind", "at")} for e in trips]
        return RunResult(
            run_id=run_id,
            status=status,
            output=output,
            path=path,
            usage=usage,
            errors=errors,
            guards_tripped=guards,
            tasks_created=created,
            cost_usd=cost,
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


def _daily_limits(team: Team) -> dict[str, tuple[int | None, float | None, float]]:
    limits = {}
    for agent in team.agents:
        budget = team.budget_of(agent)
        if budget is not None and (budget.daily_tokens or budget.daily_cost_usd):
            limits[agent.id] = (budget.daily_tokens, budget.daily_cost_usd, budget.alert_threshold)
    if team.budget is not None:
        limits[TEAM] = (
            team.budget.daily_tokens,
            team.budget.daily_cost_usd,
            team.budget.alert_threshold,
        )
    return limits


def check_run_id(run_id: str) -> str:
    """``run_id`` if well formed, else ``InputError`` saying what is allowed."""
    if not _RUN_ID.fullmatch(run_id):
        raise InputError(
            f"run id {run_id[:60]!r} is not allowed: use 1-128 letters, digits, "
            "'.', '_', ':' or '-', starting with a letter or digit",
            field="run_id",
        )
    return run_id


def new_run_id() -> str:
    """A fresh, time-ordered run id."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


def _db_path(team: Team, db: str | Path | None) -> Path:
    if db is not None:
        return Path(db)
    if team.checkpoint.db is not None:
        base = team.source.parent if team.source is not None else Path.cwd()
        return base / team.checkpoint.db
    return DEFAULT_DB
