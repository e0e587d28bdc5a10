"""``App``: a compiled team bound to its workspace; runs, resumes, lists and traces runs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.types import Command
from opentelemetry.trace import TracerProvider
from pydantic import BaseModel

from corral.errors import InputError, ManifestError, UserError
from corral.graphs._arguments import check_arguments
from corral.graphs._book import RunBook
from corral.graphs._build import CompiledTeam, build_graph, wire
from corral.graphs._drive import Drive, adrive, alast, drive, finished, last
from corral.graphs._gates import Gates
from corral.graphs._held import held_by_workflow
from corral.graphs._ids import check_config, db_path
from corral.graphs._lease import Renewals
from corral.graphs._reading import parallel_steps, read_trace
from corral.graphs._result import OnStep, RunResult
from corral.keys import DEADLINE_KEY
from corral.models import warn_sdk_retries
from corral.observability import (
    Metrics,
    RunEvent,
    RunStarted,
    Trace,
)
from corral.review import overdue
from corral.workspace import Alert, RunRecord, open_workspace

if TYPE_CHECKING:
    from corral.manifest import TeamSpec


class App:
    """A compiled team. ``graph`` is the LangGraph ``CompiledStateGraph`` itself.

    The run id is LangGraph's thread id, so ``app.graph.get_state(app.config(run_id))``
    and LangGraph's own streaming work on corral runs. The runtime (workspace, services,
    runners) is wired once, here.

    ``max_running`` bounds the async runs (``arun``, ``aresume``, ``astream``) this App
    drives at once in one event loop; the others wait their turn. CPU-bound runs started
    by the thousand keep the throughput of a smaller batch that way; runs that mostly
    wait on a model gain from more at once, so the default is ``None`` (no bound).
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
        tracer_provider: TracerProvider | None = None,
        max_running: int | None = None,
    ) -> None:
        check_arguments(
            db=db,
            chat_models=chat_models,
            on_budget_alert=on_budget_alert,
            clock=clock,
            metrics=metrics,
            tracer_provider=tracer_provider,
            max_running=max_running,
        )
        self._gate = Gates(max_running)
        self.team = team
        self.plan = plan = team.plan
        self._parallel = parallel_steps(plan)
        """Where a parallel step's agents hand on, for ``on_step`` (see ``Progress``)."""
        self.chat_models = dict(chat_models or {})
        team.check_models(self.chat_models)  # before the workspace exists
        warn_sdk_retries(self.chat_models)
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
            plan,
            workspace,
            metrics=metrics,
            on_budget_alert=on_budget_alert,
            clock=clock,
            tracer_provider=tracer_provider,
        )
        self.metrics = self.services.metrics
        self.context = self.services.context
        try:
            self.graph: CompiledTeam = build_graph(
                plan, self.services, self.chat_models, workspace.saver
            )
        except ManifestError as exc:  # a model that cannot be built (its params, its key)
            workspace.close()
            raise ManifestError(team.locate(exc.problems)) from None
        self._renewals = Renewals(f"corral-leases:{plan.name}")
        self.book = RunBook(
            plan, workspace, self.graph, self.services, where=self.db_path, clock=clock
        )

    @property
    def max_running(self) -> int | None:
        """The bound on async runs driven at once per event loop (``None``: no bound)."""
        return self._gate.limit

    def __repr__(self) -> str:
        agents = len(self.plan.agents)
        return f"App(team={self.plan.name!r}, agents={agents}, workspace={self.workspace.where!r})"

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the workspace connections (and stop the lease timer)."""
        self._renewals.stop()
        self.workspace.close()

    def config(self, run_id: str) -> RunnableConfig:
        """The LangGraph config of a run (its thread id is the run id)."""
        return self.book.config(run_id)

    def server_graph(self) -> CompiledTeam:
        """The same graph with no checkpointer, for a LangGraph server that brings its own
        (``langgraph dev``, LangGraph's Agent Server). Its runs are still registered,
        guarded and metered in this app's workspace."""
        return build_graph(self.plan, self.services, self.chat_models, None)

    def settle(self, run_id: str, error: BaseException | None = None) -> None:
        """Record how a run driven through ``graph`` by another driver ended (``error``:
        what it raised), when no step of it recorded that: it had nothing left to run, or
        it stopped between steps. A run recorded ended is left as it is."""
        self.book.settle(run_id, error)

    def pending(self) -> list[dict[str, Any]]:
        """Runs waiting for a person: run id, kind, source, target, schema, payload, reason."""
        return self.book.pending()

    def settle_reviews(
        self, *, approve_all: bool = False
    ) -> Iterator[tuple[str, str, RunResult | None]]:
        """Resume this team's paused runs whose review passed its deadline (its policy
        decides); with ``approve_all``, approve every other pending review too, except an
        escalation of a failed agent (a person must write its answer: ``edit``) and a
        review escalated by its deadline. Yields (run id, what was done, the result, or
        ``None`` if the run was left waiting) for every pending review."""
        for review in self.pending():
            run_id = str(review["run_id"])
            if held_by_workflow(self.runs, self.events, run_id):  # its workflow decides
                yield run_id, "left waiting: its Temporal workflow waits (--temporal)", None
                continue
            policy = overdue(review, self.clock())
            try:
                if policy is not None:
                    yield run_id, f"{policy} (deadline passed)", self.resume(run_id)
                elif not approve_all:
                    yield run_id, f"left waiting (deadline {review.get('deadline')})", None
                elif review["kind"] == "escalation":
                    yield run_id, "left waiting: a failed agent's answer needs --edit", None
                elif review.get("escalated"):
                    yield run_id, "left waiting: escalated by its deadline, for a person", None
                else:
                    yield run_id, "approve", self.resume(run_id, approve=True)
            except UserError as exc:  # this run cannot go on now; the others still can
                yield run_id, f"not resumed: {exc}", None

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
            config: extra LangChain config merged in (callbacks, tags, metadata); not
                ``configurable`` thread or checkpoint keys (``InputError``).
        """
        check_config(config, on_step)
        run_id, start = self.book.begin(input, run_id)
        return last(drive(self._drive(run_id, start, config, on_step), self.graph, self.book.end))

    async def arun(
        self,
        input: Mapping[str, Any] | BaseModel,
        *,
        run_id: str | None = None,
        on_step: OnStep | None = None,
        config: RunnableConfig | None = None,
    ) -> RunResult:
        """``run`` for asyncio: storage work runs on worker threads, never on the loop;
        concurrent calls in one process are safe (at most ``max_running`` at once)."""
        check_config(config, on_step)
        async with self._gate():
            began, start = await asyncio.to_thread(self.book.begin, input, run_id)
            run = self._drive(began, start, config, on_step)
            return await alast(adrive(run, self.graph, self.book.end))

    def resume(
        self,
        run_id: str,
        *,
        approve: bool = False,
        reject: str | None = None,
        edit: Mapping[str, Any] | None = None,
        migrate: bool = False,
        on_step: OnStep | None = None,
        config: RunnableConfig | None = None,
    ) -> RunResult:
        """Continue a failed, crashed or paused run from its last checkpoint.

        A run paused for review needs one decision: ``approve=True``, ``reject="why"`` or
        ``edit={...}`` (checked against the payload's schema first; a bad edit raises
        ``InputError`` and the run stays paused). A review past its deadline is decided
        by its ``on_timeout`` instead (``escalate``: it stays paused, escalated, for a
        person). A run halted by the creation rate waits out the workspace's cooldown:
        resumed before it ends, it says when it ends. A run whose team changed since it
        started goes on under compatible changes (recorded); incompatible ones raise
        ``ManifestChanged`` unless ``migrate=True``.
        """
        check_config(config, on_step)
        decided = approve or reject is not None or edit is not None
        early = self.book.cooling(run_id) or self.book.escalation(run_id, decided)
        if early is not None:
            return early
        start = self.book.resume_input(run_id, approve, reject, edit, migrate)
        return last(drive(self._drive(run_id, start, config, on_step), self.graph, self.book.end))

    async def aresume(
        self,
        run_id: str,
        *,
        approve: bool = False,
        reject: str | None = None,
        edit: Mapping[str, Any] | None = None,
        migrate: bool = False,
        on_step: OnStep | None = None,
        config: RunnableConfig | None = None,
    ) -> RunResult:
        """``resume`` for asyncio."""
        async with self._gate():
            return await self._aresume(run_id, (approve, reject, edit), migrate, on_step, config)

    async def _aresume(
        self,
        run_id: str,
        decided: tuple[bool, str | None, Mapping[str, Any] | None],
        migrate: bool,
        on_step: OnStep | None,
        config: RunnableConfig | None,
    ) -> RunResult:
        check_config(config, on_step)
        approve, reject, edit = decided
        decided_any = approve or reject is not None or edit is not None
        early = await asyncio.to_thread(self.book.cooling, run_id) or await asyncio.to_thread(
            self.book.escalation, run_id, decided_any
        )
        if early is not None:
            return early
        start = await asyncio.to_thread(
            self.book.resume_input, run_id, approve, reject, edit, migrate
        )
        run = self._drive(run_id, start, config, on_step)
        return await alast(adrive(run, self.graph, self.book.end))

    def stream(
        self,
        input: Mapping[str, Any] | BaseModel | None = None,
        *,
        run_id: str | None = None,
        approve: bool = False,
        reject: str | None = None,
        edit: Mapping[str, Any] | None = None,
        config: RunnableConfig | None = None,
    ) -> Iterator[RunEvent]:
        """Run (or, with ``input=None``, resume ``run_id``) and yield its typed events as
        they happen: ``RunStarted`` first, ``RunFinished`` last (see ``corral.RunEvent``).
        """
        run, opening, early = self._open(input, run_id, (approve, reject, edit), config)
        yield opening
        if early is not None:
            yield finished(early, self.clock())
            return
        for item in drive(run, self.graph, self.book.end):
            yield run.finished(item) if isinstance(item, RunResult) else item

    async def astream(
        self,
        input: Mapping[str, Any] | BaseModel | None = None,
        *,
        run_id: str | None = None,
        approve: bool = False,
        reject: str | None = None,
        edit: Mapping[str, Any] | None = None,
        config: RunnableConfig | None = None,
    ) -> AsyncIterator[RunEvent]:
        """``stream`` for asyncio (a service forwards each event as it is, e.g. as SSE)."""
        async with self._gate():
            run, opening, early = await asyncio.to_thread(
                self._open, input, run_id, (approve, reject, edit), config
            )
            yield opening
            if early is not None:
                yield finished(early, self.clock())
                return
            # aclosing: the run's end is recorded when this stream's aclose() returns
            async with contextlib.aclosing(adrive(run, self.graph, self.book.end)) as items:
                async for item in items:
                    yield run.finished(item) if isinstance(item, RunResult) else item

    def _open(
        self,
        input: Mapping[str, Any] | BaseModel | None,
        run_id: str | None,
        decided: tuple[bool, str | None, Mapping[str, Any] | None],
        config: RunnableConfig | None,
    ) -> tuple[Drive, RunStarted, RunResult | None]:
        """Start or resume a streamed run: its drive, its first event, and its result if
        it cannot go on yet (a cooldown)."""
        check_config(config)
        early = None
        start: dict[str, Any] | Command[Any] | None
        if input is not None:
            run_id, start = self.book.begin(input, run_id)
        elif run_id is None:
            raise InputError("give an input to start a run, or a run_id to resume", field="input")
        else:
            asked = decided[0] or decided[1] is not None or decided[2] is not None
            early = self.book.cooling(run_id) or self.book.escalation(run_id, asked)
            start = None if early else self.book.resume_input(run_id, *decided)
        if isinstance(start, dict):
            given = start  # a new run (or one that crashed before its first step)
        else:
            record = self.runs.get(run_id)
            given = record.input if record is not None else {}
        opening = RunStarted(
            run_id=run_id, at=self.clock(), team=self.plan.name, input=given, resumed=input is None
        )
        return self._drive(run_id, start, config, None, events=True), opening, early

    def _drive(
        self,
        run_id: str,
        start: dict[str, Any] | Command[Any] | None,
        extra: RunnableConfig | None,
        on_step: OnStep | None,
        *,
        events: bool = False,
    ) -> Drive:
        config = self.book.config(run_id, driven=True)  # not merge_configs: no copies
        if extra:
            config = merge_configs(config, extra)
        seconds = self.plan.guards.run_deadline_seconds
        if seconds is not None:  # counted from this start or resume: a pause is not running
            deadline = (self.clock() + seconds, seconds)
            config["configurable"] = {**config.get("configurable", {}), DEADLINE_KEY: deadline}
        return Drive(
            run_id,
            start,
            config,
            self.plan.checkpoint.durability,
            on_step=on_step,
            events=events,
            clock=self.clock,
            spans=self.services.spans,
            team=self.plan.name,
            renew=functools.partial(self.runs.renew, run_id),
            renew_every=self.runs.lease / 3,
            renewals=self._renewals,
            parallel=self._parallel,
        )

    def trace(self, run_id: str) -> Trace:
        """Everything the run did, in order: each agent's input, output and decision, model
        calls, guard verdicts, failures, subtasks (see ``corral.observability``)."""
        return read_trace(self.plan, self.workspace, run_id)

    def list_runs(self, *, limit: int = 100) -> list[RunRecord]:
        """The most recent runs in this workspace."""
        return self.runs.list(limit=limit)
