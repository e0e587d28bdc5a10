"""Runs: background, streamed (SSE), waited for; join, list, get, cancel; stateless."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from corral.server._bodies import RunCreate
from corral.server._durable import stop
from corral.server._hub import Hub
from corral.server._jobs import Job
from corral.server._threads import HubDep
from corral.server._wire import ThreadInfo, dumps, refuse

router = APIRouter(tags=["runs"])


def _where(job: Job) -> str:
    return f"/threads/{job.thread_id}/runs/{job.run_id}"


def _json(value: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), media_type="application/json", headers=headers)


async def _thread_for(hub: Hub, thread_id: str | None, body: RunCreate) -> ThreadInfo:
    if thread_id is None:  # a stateless run: on a thread of its own
        return hub.create_thread(None, {}, "raise")
    if body.if_not_exists == "create" and not await hub.exists(thread_id):
        return hub.create_thread(thread_id, {}, "raise")
    return await hub.thread(thread_id)


_ALWAYS = frozenset({"metadata", "error", "end"})


def _sse(
    job: Job,
    after: int,
    headers: dict[str, str],
    stop: Hub | None,
    modes: list[str] | None = None,
) -> Response:
    """The run's events as SSE, each with its id (its place in the run's log), so a
    client that reconnects with ``Last-Event-ID`` gets each event once."""
    wanted = _ALWAYS | {"messages" if m == "messages-tuple" else m for m in modes or []}

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            async for index, event, data in job.follow(after):
                if modes is None or event in wanted:
                    yield ServerSentEvent(data=dumps(data), event=event, id=str(index))
        finally:
            if stop is not None:  # the client is gone (``stop``: the hub that runs it)
                with anyio.CancelScope(shield=True):
                    await _stop(stop, job)

    return EventSourceResponse(events(), headers=headers)


async def _stop(hub: Hub, job: Job) -> None:
    """Cancel ``job`` for good (see ``stop``)."""
    await stop(hub.app(job.assistant_id), job)


def _after(last_event_id: str | None) -> int:
    if last_event_id is None or last_event_id == "":
        return -1
    try:
        after = int(last_event_id)
    except ValueError:
        after = -1
    if after < 0:
        raise refuse(422, f"Last-Event-ID {last_event_id[:40]!r} is not an event id")
    return after


async def _create(hub: Hub, thread_id: str | None, body: RunCreate) -> Job:
    return await hub.start(await _thread_for(hub, thread_id, body), body)


@router.post("/threads/{thread_id}/runs")
async def create_run(thread_id: str, body: RunCreate, hub: HubDep) -> Response:
    """Start a run in the background; ``Content-Location`` says where to read it."""
    job = await _create(hub, thread_id, body)
    return _json(job.to_dict(), {"Content-Location": _where(job)})


@router.post("/runs")
async def create_stateless_run(body: RunCreate, hub: HubDep) -> Response:
    job = await _create(hub, None, body)
    return _json(job.to_dict(), {"Content-Location": _where(job)})


async def _stream(hub: Hub, thread_id: str | None, body: RunCreate) -> Response:
    job = await _create(hub, thread_id, body)
    where = _where(job)
    headers = {"Location": f"{where}/stream", "Content-Location": where}
    return _sse(job, -1, headers, hub if body.on_disconnect == "cancel" else None)


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(thread_id: str, body: RunCreate, hub: HubDep) -> Response:
    """Start a run and stream its events (SSE): ``metadata`` first, ``end`` last."""
    return await _stream(hub, thread_id, body)


@router.post("/runs/stream")
async def stream_stateless_run(body: RunCreate, hub: HubDep) -> Response:
    return await _stream(hub, None, body)


async def _wait(hub: Hub, thread_id: str | None, body: RunCreate, request: Request) -> Response:
    job = await _create(hub, thread_id, body)
    where = _where(job)
    result = asyncio.ensure_future(hub.result(job))
    try:
        watch = body.on_disconnect == "cancel"
        while watch and not (await asyncio.wait({result}, timeout=_WATCH))[0]:
            if await request.is_disconnected():  # nobody waits for the run any more
                await _stop(hub, job)
                break
        return _json(await result, {"Location": f"{where}/join", "Content-Location": where})
    finally:
        result.cancel()


_WATCH = 0.25
"""Seconds between looks at whether a waiting caller is still connected."""


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, hub: HubDep, request: Request) -> Response:
    """Start a run and answer with its last values (or its interrupt, or its error)."""
    return await _wait(hub, thread_id, body, request)


@router.post("/runs/wait")
async def wait_stateless_run(body: RunCreate, hub: HubDep, request: Request) -> Response:
    return await _wait(hub, None, body, request)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    hub: HubDep, thread_id: str, limit: int = 10, offset: int = 0, status: str | None = None
) -> list[dict[str, Any]]:
    await hub.thread(thread_id)
    jobs = [j for j in hub.jobs.values() if j.thread_id == thread_id]
    jobs = [j for j in reversed(jobs) if status in (None, j.status)]
    return [j.to_dict() for j in jobs[offset : offset + max(limit, 0)]]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, hub: HubDep) -> dict[str, Any]:
    return hub.job(thread_id, run_id).to_dict()


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, hub: HubDep) -> Response:
    """Wait for a run to end; its last values (or interrupt, or error)."""
    return _json(await hub.result(hub.job(thread_id, run_id)))


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    request: Request,
    hub: HubDep,
    *,
    last_event_id: Annotated[str | None, Header()] = None,
    stream_mode: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """A run's events from the start, or after ``Last-Event-ID`` (each event once)."""
    job = hub.job(thread_id, run_id)
    where = _where(job)
    headers = {"Location": f"{where}/stream", "Content-Location": where}
    cancel = request.query_params.get("cancel_on_disconnect") in ("true", "1")
    modes = [m for m in stream_mode or [] if m] or None  # the SDK sends "" for none
    return _sse(job, _after(last_event_id), headers, hub if cancel else None, modes)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    hub: HubDep, thread_id: str, run_id: str, wait: bool = False, action: str = "interrupt"
) -> Response:
    """Stop a run. ``action=interrupt``: its checkpoints stay, the thread can go on;
    ``action=rollback`` (a thread's first run): the run, its checkpoints and its record
    are deleted, and the thread is new again."""
    job = hub.job(thread_id, run_id)
    if action not in ("interrupt", "rollback"):
        raise refuse(422, f"cancel action {action!r} is not served; use interrupt or rollback")
    if action == "rollback" and not job.starts_thread:
        raise refuse(
            409, "only the run that started its thread can be rolled back; use action=interrupt"
        )
    if action == "rollback":  # with the runs queued behind it
        await hub.cancel_back(job)
    else:
        await _stop(hub, job)
    if wait:
        await job.done.wait()
        return _json(job.to_dict())
    return Response(status_code=202)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(thread_id: str, run_id: str, hub: HubDep) -> Response:
    job = hub.job(thread_id, run_id)
    if not job.done.is_set():
        raise refuse(409, f"run {run_id!r} is {job.status}; cancel it first")
    del hub.jobs[run_id]
    return Response(status_code=204)
