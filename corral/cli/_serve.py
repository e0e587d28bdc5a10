"""``corral serve``: teams over HTTP, with LangGraph's Agent Server API."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from corral.cli._common import DbOption, app, where
from corral.cli._temporal import QueueOption, TemporalOption, scale
from corral.errors import InputError

ENV_KEYS = "CORRAL_API_KEYS"
"""The environment variable holding API keys (as in a keys file) when no file is given."""


@app.command()
def serve(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="TEAM.yaml", help="Team files (one or more).", show_default=False),
    ],
    *,
    db: DbOption = None,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port to listen on.")] = 8123,
    api_keys: Annotated[
        Path | None,
        typer.Option(
            "--api-keys",
            metavar="FILE",
            help=f"Bearer API keys, one a line: 'KEY' (every team) or 'KEY team,team'. "
            f"Without it: ${ENV_KEYS} (same lines). Without either: no key is asked for.",
        ),
    ] = None,
    max_body: Annotated[
        int, typer.Option("--max-body", min=1, metavar="BYTES", help="Largest request body.")
    ] = 1_048_576,
    keep_runs: Annotated[
        int,
        typer.Option(
            "--keep-runs",
            min=1,
            metavar="N",
            help="Ended runs whose events stay in memory to rejoin.",
        ),
    ] = 1000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            metavar="N",
            help="Worker processes that run the graphs (0: a thread of the HTTP process).",
        ),
    ] = 1,
    cors: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", metavar="ORIGIN", help="Allow this browser origin."),
    ] = None,
    temporal: TemporalOption = None,
    queue: QueueOption = None,
) -> None:
    """Serve teams as LangGraph assistants (langgraph-sdk, RemoteGraph work unchanged)."""
    try:
        import uvicorn

        from corral.server import create_app, read_api_keys
    except ImportError as exc:
        raise InputError(
            f"corral serve needs the server extra: pip install 'corral[server]' ({exc.name})"
        ) from None
    if not 0 < port < 65536:
        raise InputError(f"--port {port} is not a port: give 1 to 65535", field="port")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InputError(f"--host {host!r} cannot be listened on: {exc}", field="host") from None
    keys: dict[str, frozenset[str] | None] | None = None
    if api_keys is not None:  # a file given is read whole: an empty one is a mistake too
        try:
            keys = read_api_keys(api_keys.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise InputError(
                f"cannot read --api-keys {api_keys}: {why}", field="api_keys"
            ) from None
    else:
        text = os.environ.get(ENV_KEYS)
        if text:
            keys = read_api_keys(text)
    if temporal is not None:  # said now, once, rather than as the server's start-up failing
        import asyncio

        asyncio.run(scale().Dispatcher.connect(temporal))
    server = create_app(
        files,
        db=where(db, files[0]),
        api_keys=keys,
        max_body=max_body,
        cors_origins=cors or (),
        keep_runs=keep_runs,
        temporal=temporal,
        queue=queue,
        workers=workers,
    )
    typer.echo(f"serving {len(files)} team(s) at http://{host}:{port}", err=True)
    if not workers:
        # Runs have a thread and loop of their own; hand the GIL over every 1 ms (not 5
        # ms) so the HTTP loop's requests (health checks) do not wait behind the runs.
        sys.setswitchinterval(0.001)
    # Keep-alive longer than uvicorn's 5 s: a busy loop must not close a connection that a
    # client is about to reuse.
    uvicorn.run(server, host=host, port=port, log_level="warning", timeout_keep_alive=30)
