"""``create_app``: the ASGI app that serves teams with LangGraph's Agent Server API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from corral.errors import CorralError, InputError, UserError
from corral.graphs import App, load_team
from corral.manifest import TeamSpec
from corral.observability import Metrics
from corral.server import _runs, _threads
from corral.server._hub import Hub


def _compile(teams: Sequence[TeamSpec | str | Path], db: str | Path | None) -> list[App]:
    metrics = Metrics()  # one registry for every team: one /metrics
    apps: list[App] = []
    try:
        for team in teams:
            spec = team if isinstance(team, TeamSpec) else load_team(team)
            apps.append(App(spec, db=db, metrics=metrics))
    except BaseException:
        for app in apps:
            app.close()
        raise
    names = [a.plan.name for a in apps]
    if len(set(names)) != len(names) or not names:
        for app in apps:
            app.close()
        raise InputError(
            f"serve one or more teams with distinct names (got {names})", field="teams"
        )
    return apps


def create_app(
    teams: Sequence[TeamSpec | str | Path],
    *,
    db: str | Path | None = None,
) -> FastAPI:
    """An ASGI app serving ``teams`` (team files or specs) as LangGraph assistants.

    ``langgraph-sdk`` clients and ``RemoteGraph`` use it unchanged: a team is an
    assistant (its name is its graph id), a thread is a corral run. The OpenAPI document
    is at ``/openapi.json``; ``/ok`` answers health checks and ``/metrics`` is Prometheus
    text. Every team's workspace is ``db`` (else its manifest's ``checkpoint.db``).

    Raises:
        ManifestError: a team file is invalid (every problem, with ``file:line``).
    """
    apps = _compile(list(teams), db)
    hub = Hub(apps)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await hub.close()
            for app in apps:
                app.close()

    server = FastAPI(
        title="corral",
        summary="Teams of agents over LangGraph's Agent Server API",
        lifespan=lifespan,
    )
    server.state.hub = hub
    server.include_router(_threads.router)
    server.include_router(_runs.router)
    _corral_routes(server, apps)
    _error_handlers(server)
    return server


def _corral_routes(server: FastAPI, apps: list[App]) -> None:
    @server.get("/ok", tags=["corral"])
    async def ok() -> dict[str, bool]:
        """Health: the server answers."""
        return {"ok": True}

    @server.get("/metrics", tags=["corral"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text: runs, tokens, costs, guard trips of every team served."""
        return Response(apps[0].metrics.text(), media_type="text/plain; version=0.0.4")


def _error_handlers(server: FastAPI) -> None:
    """Errors as JSON with what to change; never a traceback."""

    @server.exception_handler(UserError)
    async def user_error(_: Request, exc: UserError) -> JSONResponse:
        field = getattr(exc, "field", None)
        body = {"detail": str(exc), "error": type(exc).__name__, "field": field}
        return JSONResponse(body, status_code=422)

    @server.exception_handler(CorralError)
    async def corral_error(_: Request, exc: CorralError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=409)

    @server.exception_handler(Exception)
    async def unexpected(_: Request, __: Exception) -> JSONResponse:
        body = {"detail": "internal error; the server log has the details", "error": "internal"}
        return JSONResponse(body, status_code=500)
