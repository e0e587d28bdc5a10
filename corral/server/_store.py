"""``/store/*``: corral's scoped context through LangGraph's store API, under the same
rules as agents meet them. The caller is the operator: it reads global and team context
(audited), writes and deletes global context only, and never reads an agent's private
notes. Namespaces are the store's own: ``["corral", TEAM, "global"]``,
``["corral", TEAM, "team", TEAM_OF_AGENTS]`` (``private`` ones are never shown)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal, cast

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.errors import PermissionDenied
from corral.graphs import App
from corral.manifest import Who
from corral.server._hub import Hub
from corral.server._threads import HubDep
from corral.server._wire import plain, refuse

router = APIRouter(tags=["store"])
Scope = Literal["private", "team", "global"]
RUN = "server"
"""The run id the operator's reads and writes are audited under."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PutItem(_Body):
    namespace: list[str] = Field(min_length=3, max_length=4)
    key: str = Field(min_length=1, max_length=100)
    value: dict[str, Any]
    ttl: float | None = Field(default=None, gt=0)
    """Minutes, as LangGraph's store counts them."""


class DeleteItem(_Body):
    namespace: list[str] = Field(min_length=3, max_length=4)
    key: str = Field(min_length=1, max_length=100)


class SearchItems(_Body):
    namespace_prefix: list[str] = Field(default_factory=list, max_length=4)
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class ListNamespaces(_Body):
    prefix: list[str] | None = Field(default=None, max_length=4)
    max_depth: int | None = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


def _place(hub: Hub, namespace: list[str]) -> tuple[App, Scope, str | None]:
    """The team app, scope and owner a namespace names (404 for a team the caller's key
    does not reach; 422 for a namespace that is not corral's)."""
    if (
        len(namespace) < 3
        or namespace[0] != "corral"
        or namespace[2]
        not in (
            "global",
            "team",
            "private",
        )
    ):
        raise refuse(422, 'a namespace is ["corral", TEAM, "global" | "team", ...]')
    app = hub.by_name.get(namespace[1])
    if app is None:
        raise refuse(404, f"no team {namespace[1]!r}")
    return app, cast(Scope, namespace[2]), namespace[3] if len(namespace) > 3 else None


def _operator(app: App) -> Who:
    teams = frozenset(a.team for a in app.plan.agents.values() if a.team is not None)
    return Who(agent="operator", team=None, supervisor=True, managed_teams=teams)


def _item(namespace: list[str], key: str, stored: dict[str, Any]) -> dict[str, Any]:
    at = datetime.fromtimestamp(float(stored.get("at") or 0), UTC).isoformat()
    return {
        "namespace": namespace,
        "key": key,
        "value": plain(stored),
        "created_at": at,
        "updated_at": at,
    }


@router.put("/store/items", status_code=204)
async def put_item(body: PutItem, hub: HubDep) -> Response:
    """Write global context (the operator's); other scopes are the agents' to write."""
    app, scope, _ = _place(hub, body.namespace)
    if scope != "global" or len(body.namespace) != 3:
        who = _operator(app)
        raise PermissionDenied(
            agent=who.agent,
            action="write",
            scope=scope,
            target=body.key,
            reason="agents write notes and publish them; the operator writes global context",
        )
    ttl = body.ttl * 60 if body.ttl is not None else None
    await asyncio.to_thread(app.context.write_global, RUN, None, body.key, body.value, ttl)
    return Response(status_code=204)


@router.get("/store/items")
async def get_item(namespace: str, key: str, hub: HubDep) -> dict[str, Any]:
    """One live item of global or team context (an agent's private notes: 403)."""
    parts = namespace.split(".")
    app, scope, owner = _place(hub, parts)
    read = app.context.read
    value = await asyncio.to_thread(read, RUN, _operator(app), scope, key, owner)
    if value is None:
        raise refuse(404, f"no live item {key!r} in {namespace!r}")
    stored = await asyncio.to_thread(app.workspace.store.get, tuple(parts), key)
    return _item(parts, key, stored.value if stored is not None else {"value": value})


@router.delete("/store/items", status_code=204)
async def delete_item(body: DeleteItem, hub: HubDep) -> Response:
    """Delete an item of global context (audited)."""
    app, scope, _ = _place(hub, body.namespace)
    if scope != "global":
        raise PermissionDenied(
            agent="operator",
            action="delete",
            scope=scope,
            target=body.key,
            reason="the operator deletes global context only",
        )
    await asyncio.to_thread(app.workspace.store.delete, tuple(body.namespace), body.key)
    await asyncio.to_thread(
        app.audit.record,
        RUN,
        "operator",
        "delete",
        scope="global",
        target=body.key,
        verdict="allowed",
    )
    return Response(status_code=204)


async def _namespaces(hub: Hub, prefix: list[str]) -> list[list[str]]:
    found = []
    for name, app in hub.by_name.items():
        listed = await asyncio.to_thread(
            app.workspace.store.list_namespaces, prefix=("corral", name), limit=10_000
        )
        for ns in listed:
            if ns[2] != "private" and list(ns[: len(prefix)]) == prefix:
                found.append(list(ns))
    return sorted(found)


@router.post("/store/items/search")
async def search_items(body: SearchItems, hub: HubDep) -> dict[str, Any]:
    """Live items of global and team context under a namespace prefix."""
    items = []
    for ns in await _namespaces(hub, body.namespace_prefix):
        app, scope, owner = _place(hub, ns)
        entries = await asyncio.to_thread(
            app.context.entries,
            RUN,
            _operator(app),
            scope,
            owner,
        )
        for key in entries:
            stored = await asyncio.to_thread(app.workspace.store.get, tuple(ns), key)
            if stored is not None:
                items.append({**_item(ns, key, stored.value), "score": None})
    return {"items": items[body.offset : body.offset + body.limit]}


@router.post("/store/namespaces")
async def list_namespaces(body: ListNamespaces, hub: HubDep) -> dict[str, Any]:
    """The namespaces of global and team context (private ones are never listed)."""
    found = await _namespaces(hub, body.prefix or [])
    if body.max_depth is not None:
        found = sorted({tuple(n[: body.max_depth]) for n in found})  # type: ignore[misc]
    return {"namespaces": [list(n) for n in found][body.offset : body.offset + body.limit]}
