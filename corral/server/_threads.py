"""Assistants (a team is an assistant) and threads (a thread is a corral run)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from corral.server._bodies import (
    AssistantSearch,
    CheckpointQuery,
    HistoryQuery,
    ThreadCount,
    ThreadCreate,
    ThreadSearch,
    matches,
)
from corral.server._hub import Hub
from corral.server._jobs import unfinished
from corral.server._safety import caller_teams
from corral.server._wire import ThreadInfo, plain, refuse, thread_state

router = APIRouter()


async def hub(request: Request) -> Hub:
    """The server's hub as the caller's API key lets it see it (401 without a key, when
    keys are set)."""
    found: Hub = request.app.state.hub
    return found.limited(caller_teams(request, request.app.state.api_keys))


HubDep = Annotated[Hub, Depends(hub)]


def _assistant(hub: Hub, key: str) -> dict[str, Any]:
    app = hub.app(key)
    aid = next(k for k, v in hub.apps.items() if v is app)
    return {
        "assistant_id": aid,
        "graph_id": app.plan.name,
        "name": app.plan.name,
        "description": app.team.description,
        "config": {},
        "context": {},
        "metadata": {"created_by": "corral"},
        "version": 1,
        "created_at": hub.started,
        "updated_at": hub.started,
    }


@router.get("/assistants/{assistant_id}", tags=["assistants"])
async def get_assistant(assistant_id: str, hub: HubDep) -> dict[str, Any]:
    return _assistant(hub, assistant_id)


def _assistants(hub: Hub, body: AssistantSearch) -> list[dict[str, Any]]:
    found = [_assistant(hub, aid) for aid in hub.apps]
    return [
        a
        for a in found
        if body.graph_id in (None, a["graph_id"])
        and body.name in (None, a["name"])
        and matches(a["metadata"], body.metadata)
    ]


@router.post("/assistants/search", tags=["assistants"])
async def search_assistants(body: AssistantSearch, hub: HubDep) -> list[dict[str, Any]]:
    return _assistants(hub, body)[body.offset : body.offset + body.limit]


@router.post("/assistants/count", tags=["assistants"])
async def count_assistants(body: AssistantSearch, hub: HubDep) -> int:
    return len(_assistants(hub, body))


@router.get("/assistants/{assistant_id}/graph", tags=["assistants"])
async def assistant_graph(
    hub: HubDep, assistant_id: str, xray: bool | int = False
) -> dict[str, Any]:
    """The team's drawing as LangGraph's JSON graph (nodes and edges)."""
    graph = hub.app(assistant_id).graph.get_graph(xray=xray)
    drawn: dict[str, Any] = plain(graph.to_json())
    return drawn


@router.get("/assistants/{assistant_id}/schemas", tags=["assistants"])
async def assistant_schemas(assistant_id: str, hub: HubDep) -> dict[str, Any]:
    """The flow's input and output schemas (JSON Schema)."""
    app = hub.app(assistant_id)
    return {
        "graph_id": app.plan.name,
        "input_schema": app.graph.get_input_jsonschema(),
        "output_schema": app.graph.get_output_jsonschema(),
        "state_schema": None,
        "config_schema": None,
        "context_schema": None,
    }


@router.post("/threads", tags=["threads"])
async def create_thread(body: ThreadCreate, hub: HubDep) -> dict[str, Any]:
    if body.thread_id is not None and await hub.exists(body.thread_id):
        if body.if_exists == "raise":
            raise refuse(409, f"thread {body.thread_id!r} exists; pass if_exists='do_nothing'")
        return await hub.thread_dict(await hub.thread(body.thread_id))  # 404: not the key's
    info = hub.create_thread(body.thread_id, body.metadata, body.if_exists)
    return await hub.thread_dict(info)


@router.get("/threads/{thread_id}", tags=["threads"])
async def get_thread(thread_id: str, hub: HubDep) -> dict[str, Any]:
    return await hub.thread_dict(await hub.thread(thread_id))


async def _threads(hub: Hub, body: ThreadSearch | ThreadCount) -> list[dict[str, Any]]:
    ids = getattr(body, "ids", None)
    found = []
    for info in await hub.all_threads():
        if ids is not None and info.thread_id not in ids:
            continue
        thread = await hub.thread_dict(info)
        if (
            body.status in (None, thread["status"])
            and matches(thread["metadata"], body.metadata)
            and matches(thread["values"] if isinstance(thread["values"], dict) else {}, body.values)
        ):
            found.append(thread)
    return found


@router.post("/threads/search", tags=["threads"])
async def search_threads(body: ThreadSearch, hub: HubDep) -> list[dict[str, Any]]:
    found = await _threads(hub, body)  # newest first, then in the order asked for
    found.sort(key=lambda t: str(t.get(body.sort_by) or ""), reverse=body.sort_order == "desc")
    return found[body.offset : body.offset + body.limit]


@router.post("/threads/count", tags=["threads"])
async def count_threads(body: ThreadCount, hub: HubDep) -> int:
    return len(await _threads(hub, body))


@router.delete("/threads/{thread_id}", status_code=204, tags=["threads"])
async def delete_thread(thread_id: str, hub: HubDep) -> Response:
    """Delete a thread: its corral run, checkpoints and record (not while it runs)."""
    info = await hub.thread(thread_id)
    if unfinished(hub.current.get(thread_id)):
        raise refuse(409, f"thread {thread_id!r} is busy; cancel its run first")
    if info.team is not None and hub.temporal is not None:  # a review may wait there
        await hub.temporal.forget(thread_id)
    if info.team is not None:
        await asyncio.to_thread(hub.by_name[info.team].workspace.delete_run, thread_id)
    hub.threads.pop(thread_id, None)
    hub.current.pop(thread_id, None)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/copy", tags=["threads"])
async def copy_thread(thread_id: str, hub: HubDep) -> dict[str, Any]:
    """A new thread with this one's checkpoints and run record (input, team)."""
    info = await hub.thread(thread_id)
    copy = hub.create_thread(str(uuid.uuid4()), dict(info.metadata), "raise")
    held = await hub.record(thread_id)
    if held is not None:
        app, record = held
        await asyncio.to_thread(app.checkpointer.copy_thread, thread_id, copy.thread_id)
        await asyncio.to_thread(
            app.runs.start, copy.thread_id, record.team, record.manifest, record.input
        )
        await asyncio.to_thread(app.runs.update, copy.thread_id, record.status)
        copy.team = info.team
    return await hub.thread_dict(copy)


async def _state(hub: Hub, thread_id: str, checkpoint: dict[str, Any] | None) -> dict[str, Any]:
    info = await hub.thread(thread_id)
    if info.team is None:  # nothing ran yet: an empty state
        return {
            "values": {},
            "next": [],
            "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None},
            "metadata": {},
            "created_at": None,
            "parent_checkpoint": None,
            "tasks": [],
            "interrupts": [],
        }
    app = hub.by_name[info.team]
    config = app.config(thread_id)
    if checkpoint:
        config["configurable"] = {**config["configurable"], **checkpoint, "thread_id": thread_id}
    return thread_state(await app.graph.aget_state(config), thread_id)


@router.get("/threads/{thread_id}/state", tags=["threads"])
async def get_state(thread_id: str, hub: HubDep) -> dict[str, Any]:
    return await _state(hub, thread_id, None)


@router.get("/threads/{thread_id}/state/{checkpoint_id}", tags=["threads"])
async def get_state_at(thread_id: str, checkpoint_id: str, hub: HubDep) -> Any:
    return await _state(hub, thread_id, {"checkpoint_id": checkpoint_id})


@router.post("/threads/{thread_id}/state/checkpoint", tags=["threads"])
async def post_state_at(thread_id: str, body: CheckpointQuery, hub: HubDep) -> Any:
    return await _state(hub, thread_id, body.checkpoint)


async def _history(hub: Hub, thread_id: str, body: HistoryQuery) -> list[dict[str, Any]]:
    info = await hub.thread(thread_id)
    if info.team is None:
        return []
    app = hub.by_name[info.team]
    config = app.config(thread_id)
    if body.checkpoint:
        config["configurable"] = {**config["configurable"], **body.checkpoint}
    before = body.before  # a checkpoint id, or a checkpoint as the server returned it
    if isinstance(before, dict):
        before = before.get("checkpoint_id")
        if not isinstance(before, str):
            raise refuse(422, "before: a checkpoint names its checkpoint_id")
    return [
        thread_state(s, thread_id)
        async for s in app.graph.aget_state_history(
            config,
            limit=body.limit,
            before={"configurable": {"checkpoint_id": before}} if before else None,
            filter=body.metadata,
        )
    ]


@router.post("/threads/{thread_id}/history", tags=["threads"])
async def post_history(thread_id: str, body: HistoryQuery, hub: HubDep) -> Any:
    return await _history(hub, thread_id, body)


@router.get("/threads/{thread_id}/history", tags=["threads"])
async def get_history(
    hub: HubDep, thread_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 10
) -> Any:
    return await _history(hub, thread_id, HistoryQuery(limit=limit))


__all__ = ["HubDep", "ThreadInfo", "router"]
