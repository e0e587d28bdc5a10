"""Corral's own routes: health, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.server._hub import refuse
from corral.server._threads import HubDep

router = APIRouter(tags=["corral"])


@router.get("/ok")
async def ok() -> dict[str, bool]:
    """Health: the server answers (no key needed)."""
    return {"ok": True}


@router.get("/metrics", response_class=Response)
async def metrics(hub: HubDep, request: Request) -> Response:
    """Prometheus text: runs, tokens, costs and guard trips of every team served (so
    only a key for every team reads it)."""
    if hub is not request.app.state.hub:
        raise refuse(403, "the metrics cover every team: use a key for every team")
    app = next(iter(hub.by_name.values()))
    return Response(app.metrics.text(), media_type="text/plain; version=0.0.4")
