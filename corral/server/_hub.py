"""The server's state: its teams (assistants), threads and runs.

A thread is a corral run: its id is the run id (LangGraph's thread id) and the workspace
holds its checkpoints and record. A LangGraph "run" is one execution on a thread: the
first starts the corral run, later ones resume it (a review's decision).
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any
from weakref import WeakValueDictionary

from fastapi import HTTPException
from langgraph.types import Command

from corral.graphs import App, check_run_id
from corral.keys import DEADLINE_KEY
from corral.manifest import validate
from corral.review import decision, overdue, review_schema
from corral.server._durable import claim, mark, orphans, stop
from corral.server._jobs import STREAM_MODES, Executor, Job, Start, drive, unfinished
from corral.server._wire import ThreadInfo, assistant_id, interrupts_by_task, now_iso, plain, refuse
from corral.workspace import RunRecord

if TYPE_CHECKING:
    from corral.server._temporal import TemporalRuns


class Hub:
    """Teams by assistant id, threads, and the runs this process executes."""

    def __init__(
        self,
        apps: list[App],
        executor: Executor,
        keep_runs: int = 1000,
        temporal: TemporalRuns | None = None,
    ) -> None:
        self.everyone = list(apps)
        """Every team served, whichever a caller may see."""
        self.apps = {assistant_id(a.plan.name): a for a in apps}
        self.by_name = {a.plan.name: a for a in apps}
        self.started = now_iso()
        self.threads: dict[str, ThreadInfo] = {}
        self.jobs: dict[str, Job] = {}
        self.current: dict[str, Job] = {}
        """The latest run of each thread (running, queued or ended)."""
        self.executor = executor
        """Where the runs' graphs execute: this loop only serves I/O."""
        self.keep_runs = keep_runs
        self.ended: deque[str] = deque()
        """Ended runs, oldest first: the last ``keep_runs`` keep their event logs."""
        self.temporal = temporal
        """Where runs execute when not here: Temporal workers (``--temporal``)."""
        self._starting: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    def limited(self, teams: frozenset[str] | None) -> Hub:
        """This hub as a caller limited to ``teams`` sees it (``None``: every team)."""
        if teams is None:
            return self
        view = copy.copy(self)  # the same threads and runs; fewer teams
        view.by_name = {n: a for n, a in self.by_name.items() if n in teams}
        view.apps = {k: a for k, a in self.apps.items() if a.plan.name in teams}
        return view

    # -- assistants ---------------------------------------------------------------------
    def app(self, assistant: str) -> App:
        """The team an assistant id (or a team name, as a graph id) names, else 404."""
        found = self.apps.get(assistant) or self.by_name.get(assistant)
        if found is None:
            raise refuse(404, f"no assistant {assistant!r}; GET /assistants/search lists them")
        return found

    # -- threads ------------------------------------------------------------------------
    async def record(self, thread_id: str) -> tuple[App, RunRecord] | None:
        """The corral run behind a thread, with its team's app, if the run exists."""
        for app in self.by_name.values():
            found = await asyncio.to_thread(app.runs.get, thread_id)
            if found is not None and found.team in self.by_name:
                return self.by_name[found.team], found
        return None

    async def exists(self, thread_id: str) -> bool:
        """Whether a thread (of any team, whoever may see it) has this id."""
        if thread_id in self.threads:
            return True
        for app in self.everyone:
            if await asyncio.to_thread(app.runs.get, thread_id) is not None:
                return True
        return False

    async def thread(self, thread_id: str) -> ThreadInfo:
        """A thread the server made, or one a run in the workspace stands for; else 404."""
        info = self.threads.get(thread_id)
        if info is not None:
            if info.team is not None and info.team not in self.by_name:  # another team's
                raise refuse(404, f"no thread {thread_id!r}")
            return info
        held = await self.record(thread_id)
        if held is None:
            raise refuse(404, f"no thread {thread_id!r}; create it with POST /threads")
        app, record = held
        info = ThreadInfo(thread_id, team=app.plan.name, created_at=record.started_at)
        info.updated_at = record.updated_at
        self.threads[thread_id] = info
        return info

    def create_thread(
        self, thread_id: str | None, metadata: dict[str, Any], if_exists: str
    ) -> ThreadInfo:
        thread_id = check_run_id(thread_id) if thread_id else str(uuid.uuid4())
        existing = self.threads.get(thread_id)
        if existing is not None:
            if if_exists == "do_nothing":
                return existing
            raise refuse(409, f"thread {thread_id!r} exists; pass if_exists='do_nothing'")
        info = self.threads[thread_id] = ThreadInfo(thread_id, metadata=dict(metadata))
        return info

    async def thread_dict(self, info: ThreadInfo) -> dict[str, Any]:
        """The SDK's ``Thread``: status ``idle | busy | interrupted | error``, values and
        the interrupts that wait."""
        values: Any = {}
        interrupts: dict[str, list[dict[str, Any]]] = {}
        status = "idle"
        job = self.current.get(info.thread_id)
        if info.team is not None:
            app = self.by_name[info.team]
            snapshot = await app.graph.aget_state(app.config(info.thread_id))
            values = plain(snapshot.values)
            interrupts = interrupts_by_task(snapshot)
            record = await asyncio.to_thread(app.runs.get, info.thread_id)
            if interrupts:
                status = "interrupted"
            elif (record is not None and record.status in ("failed", "halted")) or (
                job is not None and job.status == "error"
            ):
                status = "error"
        if unfinished(job):
            status = "busy"
        return {
            "thread_id": info.thread_id,
            "created_at": info.created_at,
            "updated_at": info.updated_at,
            "metadata": {**info.metadata, **({"graph_id": info.team} if info.team else {})},
            "status": status,
            "values": values,
            "interrupts": interrupts,
        }

    async def all_threads(self) -> list[ThreadInfo]:
        """Every thread: those made here, and every run of this server's teams."""
        for app in self.by_name.values():
            for record in await asyncio.to_thread(app.list_runs, limit=100_000):
                if record.team in self.by_name and record.run_id not in self.threads:
                    await self.thread(record.run_id)
        mine = [t for t in self.threads.values() if t.team is None or t.team in self.by_name]
        return sorted(mine, key=lambda t: t.created_at, reverse=True)

    # -- runs ---------------------------------------------------------------------------
    async def start(self, info: ThreadInfo, body: Any) -> Job:
        """Check a run request and start it in the background (``body``: ``RunCreate``),
        one at a time per thread: the busy check holds until the run is launched."""
        lock = self._starting.setdefault(info.thread_id, asyncio.Lock())
        async with lock:
            return await self._start(info, body)

    async def _start(self, info: ThreadInfo, body: Any) -> Job:
        app = self.app(body.assistant_id)
        if info.team is not None and info.team != app.plan.name:
            raise refuse(409, f"thread {info.thread_id!r} runs team {info.team!r}")
        asked = [body.stream_mode] if isinstance(body.stream_mode, str) else body.stream_mode
        served = STREAM_MODES if self.temporal is None else self.temporal.modes
        unknown = [m for m in asked if m not in served]
        if unknown:
            on = "" if self.temporal is None else " on Temporal workers (--temporal)"
            raise refuse(422, f"stream mode {unknown[0]!r} is not served{on}; use {served}")
        before = self.current.get(info.thread_id)
        waiting = unfinished(before)  # the thread's runs not ended, the running one too
        busy = bool(waiting)
        if busy and body.multitask_strategy == "reject":
            raise refuse(409, f"thread {info.thread_id!r} is busy; wait, or enqueue the run")
        if busy and body.multitask_strategy not in ("enqueue", "interrupt", "rollback"):
            raise refuse(422, f"multitask_strategy {body.multitask_strategy!r} is not served")
        if busy and body.multitask_strategy == "rollback":
            start: Start | Callable[[], Awaitable[Start]] = await self._replace(app, body, waiting)
            busy = False
        else:
            start = await self._start_value(app, info, body, queued=busy)
        holder = None  # on Temporal, the run's worker registers and holds it
        if self.temporal is None:
            holder = await asyncio.to_thread(claim, app, info.thread_id, start)
        if holder is not None:
            raise refuse(409, f"thread {info.thread_id!r} is being run by {holder}")
        interrupt = body.multitask_strategy == "interrupt"
        if busy and interrupt:
            for other in waiting:  # as a cancel: their checkpoints stay
                await stop(app, other)
        job = Job(
            run_id=str(uuid.uuid4()),
            thread_id=info.thread_id,
            assistant_id=assistant_id(app.plan.name),
            metadata=dict(body.metadata or {}),
            multitask_strategy=body.multitask_strategy,
            stream_mode=list(asked),
            starts_thread=isinstance(start, dict),
        )
        info.team = app.plan.name
        info.updated_at = now_iso()
        if self.temporal is None:  # a restarted server goes on with it (not a worker's)
            await asyncio.to_thread(mark, app, job, "start")
        self._launch(job, app, start, before if busy else None)
        return job

    def _launch(
        self, job: Job, app: App, start: Start | Callable[[], Awaitable[Start]], before: Job | None
    ) -> None:
        self.jobs[job.run_id] = self.current[job.thread_id] = job
        job.ahead = before
        if self.temporal is not None:
            job.task = self.temporal.launch(job, app, start, before)
        else:
            config = self._config(app, job.thread_id)
            run = drive(job, app, start, config, executor=self.executor, before=before)
            job.task = asyncio.create_task(run)
        job.task.add_done_callback(lambda _: self._retire(job))

    def _retire(self, job: Job) -> None:
        """Keep the event logs of the last ``keep_runs`` ended runs and forget older ones:
        their get, join and stream are 404s; their threads' state stays in the workspace."""
        self.ended.append(job.run_id)
        while len(self.ended) > self.keep_runs:
            old = self.jobs.pop(self.ended.popleft(), None)
            if old is not None:  # its thread still knows its last run's status
                old.events, old.output, old.interrupts = [], None, []

    async def recover(self) -> None:
        """Go on with the runs a dead server left running (each once: taken over first).
        On Temporal, connect to it instead: the runs' workers go on with them."""
        if self.temporal is not None:
            await self.temporal.connect()
            return
        await self.executor.begin()
        for app in self.by_name.values():
            for thread_id, given, event in await asyncio.to_thread(orphans, app):
                snapshot = await app.graph.aget_state(app.config(thread_id))
                info = await self.thread(thread_id)
                job = Job(
                    run_id=str(event["run_id"]),
                    thread_id=thread_id,
                    assistant_id=assistant_id(app.plan.name),
                    metadata={},
                    multitask_strategy="reject",
                    stream_mode=list(event.get("stream_mode") or ["values"]),
                )
                info.updated_at = now_iso()
                self._launch(job, app, None if snapshot.created_at else given, None)

    def _config(self, app: App, thread_id: str) -> Any:
        config = app.config(thread_id)
        seconds = app.plan.guards.run_deadline_seconds
        if seconds is not None:  # as the App does: counted from this start or resume
            deadline = (app.clock() + seconds, seconds)
            config["configurable"] = {**config["configurable"], DEADLINE_KEY: deadline}
        return config

    async def _start_value(
        self, app: App, info: ThreadInfo, body: Any, *, queued: bool
    ) -> Start | Callable[[], Awaitable[Start]]:
        """What the graph starts from: the checked input, a review's checked decision,
        or ``None`` (go on from the last checkpoint)."""
        ran = info.team is not None and await self.record(info.thread_id) is not None
        if body.command is not None:
            decide = partial(self._decision, app, info.thread_id, body.command)
            return decide if queued else await decide()  # queued: checked when it starts
        if body.input is None:
            if not ran and not queued:
                raise refuse(422, "give an input to start a run on a new thread")
            return None
        if ran or queued:
            raise refuse(
                409,
                f"thread {info.thread_id!r} already ran team {info.team!r}: one corral run per "
                "thread; create a new thread for a new input",
            )
        return self._checked(app, body.input)

    def _checked(self, app: App, given: Any) -> dict[str, Any]:
        """A run's input checked against the flow's input schema, else a 422 naming the
        fields."""
        schema = app.plan.schemas[app.plan.input_name]
        payload, errors = validate(schema, given)
        if payload is None:
            raise HTTPException(
                422,
                detail=[
                    {"loc": ["body", "input", *e.split(":")[0].split(".")], "msg": e}
                    for e in errors
                ],
            )
        return payload

    async def _decision(self, app: App, thread_id: str, command: dict[str, Any]) -> Command[Any]:
        """``command: {resume: ...}``: approve, reject with a reason, or an edit checked
        against the waiting payload's schema (a bad edit: 422, and the run stays paused)."""
        if set(command) - {"resume"}:
            raise refuse(422, "only command.resume is served (goto and update are not)")
        resume = command.get("resume")
        snapshot = await app.graph.aget_state(app.config(thread_id))
        request = dict(snapshot.interrupts[0].value) if snapshot.interrupts else None
        if request is None:
            raise refuse(409, f"thread {thread_id!r} is not waiting for a review")
        if overdue(request, app.clock()) is not None:
            raise refuse(409, f"the review passed its deadline {request.get('deadline')}")
        if not isinstance(resume, dict) or resume.get("action") not in (
            "approve",
            "reject",
            "edit",
        ):
            raise refuse(
                422,
                'resume with {"action": "approve"}, {"action": "reject", "reason": "..."} '
                'or {"action": "edit", "payload": {...}}',
            )
        action = resume["action"]
        value = decision(
            thread_id,
            request,
            review_schema(app.plan, request["schema"]),
            approve=action == "approve",
            reject=str(resume.get("reason") or "no reason given") if action == "reject" else None,
            edit=resume.get("payload") or {} if action == "edit" else None,
        )
        return Command(resume=value)

    async def _replace(self, app: App, body: Any, waiting: list[Job]) -> dict[str, Any]:
        """``multitask_strategy: rollback``: the new run's input is checked, then the
        thread's runs not ended are cancelled and rolled back (the thread is new again), if
        the oldest not already replaced (``interrupt``) started the thread."""
        first = ([j for j in waiting if not j.stopped] or waiting)[-1]
        if not first.starts_thread:
            raise refuse(
                409,
                "only the run that started its thread can be rolled back; use "
                "multitask_strategy 'interrupt'",
            )
        if body.command is not None or body.input is None:
            raise refuse(422, "a rolled back thread is new: start the run with an input")
        payload = self._checked(app, body.input)
        await self._wipe(app, first)
        return payload

    async def cancel_back(self, job: Job) -> None:
        """Cancel with ``action=rollback``: ``job`` (its thread's first run, not ended) and
        the runs queued behind it stop, and the thread is new again."""
        async with self._starting.setdefault(job.thread_id, asyncio.Lock()):
            if job.done.is_set():  # what the thread did since stays
                raise refuse(
                    409,
                    f"run {job.run_id!r} has ended ({job.status}); only a run not "
                    "yet ended is rolled back",
                )
            await self._wipe(self.app(job.assistant_id), job)

    async def _wipe(self, app: App, first: Job) -> None:
        """Stop ``first`` (its thread's first run) and every run queued behind it (newest
        first, so none starts meanwhile), wait for their ends, then delete the corral run,
        its checkpoints and record: the thread is new again (another input may start it)."""
        waiting = unfinished(self.current.get(first.thread_id)) or [first]
        for job in waiting:
            await stop(app, job)
        for job in waiting:
            await job.done.wait()
        info = self.threads.get(first.thread_id)
        if info is not None and info.team is not None:
            await asyncio.to_thread(self.by_name[info.team].workspace.delete_run, first.thread_id)
            info.team = None
        self.jobs.pop(first.run_id, None)
        self.current.pop(first.thread_id, None)

    def job(self, thread_id: str | None, run_id: str) -> Job:
        job = self.jobs.get(run_id)
        if (
            job is None
            or (thread_id is not None and job.thread_id != thread_id)
            or job.assistant_id not in self.apps
        ):
            raise refuse(404, f"no run {run_id!r} on thread {thread_id!r}")
        return job

    async def result(self, job: Job) -> Any:
        """What ``wait`` and ``join`` answer: the last values, the waiting interrupts, or
        the error."""
        await job.done.wait()
        if job.error is not None:
            return {"__error__": job.error}
        output = job.output if isinstance(job.output, dict) else {}
        if job.interrupts:
            output = {**output, "__interrupt__": job.interrupts}
        return output

    async def close(self) -> None:
        """Stop every run still going (its checkpoints stay: it can be resumed). On
        Temporal, stop following them: they go on, on their workers."""
        if self.temporal is not None:
            self.temporal.closing = True
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        await asyncio.gather(
            *(j.task for j in self.jobs.values() if j.task), return_exceptions=True
        )
        await self.executor.stop()
