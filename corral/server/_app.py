"""``create_app``: the ASGI app that serves teams with LangGraph's Agent Server API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from corral.errors import InputError
from corral.manifest import TeamSpec
from corral.server import _routes, _runs, _store, _threads
from corral.server._hub import Hub
from corral.server._jobs import Executor
from corral.server._pool import ProcessPool
from corral.server._runner import ThreadExecutor
from corral.server._safety import ERRORS, BodyLimit, Keys, error_handlers
from corral.server._worker_proc import compile_teams, team_files


def create_app(
    teams: Sequence[TeamSpec | str | Path],
    *,
    db: str | Path | None = None,
    api_keys: Keys | None = None,
    max_body: int = 1_048_576,
    cors_origins: Sequence[str] = (),
    keep_runs: int = 1000,
    temporal: str | None = None,
    queue: str | None = None,
    workers: int = 0,
) -> FastAPI:
    """An ASGI app serving ``teams`` (team files or specs) as LangGraph assistants.

    ``langgraph-sdk`` clients and ``RemoteGraph`` use it unchanged: a team is an
    assistant (its name is its graph id), a thread is a corral run. The OpenAPI document
    is at ``/openapi.json``; ``/ok`` answers health checks and ``/metrics`` is Prometheus
    text.

    Args:
        teams: team files or specs; every one's workspace is ``db`` (else its manifest's
            ``checkpoint.db``).
        api_keys: bearer key -> the teams it may use (``None``: all); ``read_api_keys``
            reads them from text. Without keys, no key is asked for.
        max_body: the largest request body, in bytes (413 above it).
        cors_origins: browser origins allowed to call (none by default: CORS is off).
        keep_runs: how many ended runs keep their event logs in memory (to join, get or
            stream again); older ones are forgotten (404), their threads stay.
        temporal: ``HOST:PORT`` of a Temporal server: runs go to ``corral worker``
            processes (sharing ``db``) instead of running here; streams serve ``values``
            and ``updates``. Needs ``corral[scale]``.
        queue: the task queue of the (one) team's workers (default ``corral-TEAM``).
        workers: how many worker processes run the graphs (each opens the teams and
            the workspace); ``0``: a thread of this process (no start-up cost; the runs
            share this process's GIL with the HTTP loop). With ``temporal``, no worker
            process starts: the runs are on Temporal workers.

    Raises:
        ManifestError: a team file is invalid (every problem, with ``file:line``).
    """
    if max_body < 1:
        raise InputError(f"max_body must be at least 1 byte (got {max_body})", field="max_body")
    if keep_runs < 1:
        raise InputError(f"keep_runs must be at least 1 (got {keep_runs})", field="keep_runs")
    if workers < 0:
        raise InputError(f"workers must be 0 or more (got {workers})", field="workers")
    runs = None
    if temporal is not None:
        from corral.server._temporal import TemporalRuns, check_queue

        check_queue(queue, len(teams))
        runs = TemporalRuns(temporal, queue=queue)
        workers = 0
    files = team_files(teams) if workers else []  # checked before the workspace opens
    apps = compile_teams(list(teams), db)
    executor: Executor = ProcessPool(apps, files, db, workers) if workers else ThreadExecutor()
    hub = Hub(apps, executor, keep_runs, runs)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await hub.recover()
            yield
        finally:
            await hub.close()
            for app in apps:
                app.close()

    server = FastAPI(
        title="corral",
        summary="Teams of agents over LangGraph's Agent Server API",
        lifespan=lifespan,
        responses=ERRORS,
    )
    server.state.hub = hub
    server.state.api_keys = dict(api_keys) if api_keys is not None else None
    server.include_router(_threads.router)
    server.include_router(_runs.router)
    server.include_router(_routes.router)
    server.include_router(_store.router)
    error_handlers(server)
    if cors_origins:
        server.add_middleware(CORSMiddleware, allow_origins=list(cors_origins))
    server.add_middleware(BodyLimit, limit=max_body)
    return server
