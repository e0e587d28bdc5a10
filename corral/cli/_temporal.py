"""``corral worker`` and the ``--temporal`` paths of ``corral run`` and ``corral resume``:
runs on Temporal workers (``pip install 'corral[scale]'``)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from corral.cli._common import (
    ENV_DB,
    EXIT,
    FileArg,
    app,
    finish,
    load_team,
    where,
)
from corral.errors import InputError, RunError, UserError
from corral.workspace import workspace_label

if TYPE_CHECKING:
    from corral.graphs import Team

TemporalOption = Annotated[
    str | None,
    typer.Option(
        "--temporal",
        metavar="HOST:PORT",
        help="Run on Temporal workers (corral worker) through this Temporal server.",
    ),
]
QueueOption = Annotated[
    str | None,
    typer.Option(
        "--queue", metavar="NAME", help="Temporal task queue [default: corral-TEAM_NAME]."
    ),
]


def scale() -> ModuleType:
    """``corral.scale``, or a clear error when its extra is not installed."""
    try:
        import corral.scale
    except ImportError as exc:
        raise UserError(
            f"running on Temporal needs the 'scale' extra ({exc.name} is missing): "
            "pip install 'corral[scale]'"
        ) from None
    return corral.scale


@app.command()
def worker(
    file: FileArg,
    *,
    temporal: Annotated[
        str, typer.Option("--temporal", metavar="HOST:PORT", help="The Temporal server.")
    ],
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH|URL",
            help=f"The shared workspace (a file every worker reaches, or a URL). Without it: "
            f"${ENV_DB}, then the team file's checkpoint.db.",
        ),
    ] = None,
    queue: QueueOption = None,
    max_runs: Annotated[
        int, typer.Option("--max-runs", min=1, help="Runs this worker advances at once.")
    ] = 50,
    max_subtasks: Annotated[
        int,
        typer.Option("--max-subtasks", min=1, help="Delegated subtasks it runs at once."),
    ] = 100,
) -> None:
    """Serve a team's runs from a Temporal task queue until stopped (Ctrl-C, SIGTERM)."""
    team = load_team(file)
    scaled = scale()
    workspace = scaled.workspace_of(db) if db is not None else where(None, team)
    err = Console(stderr=True, highlight=False, soft_wrap=True)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(name: str) -> None:
            err.print(
                f"worker ready: team {escape(team.name)}, queue {escape(name)}, Temporal "
                f"{escape(temporal)}, workspace {escape(workspace_label(workspace))}"
            )

        with team.compile(db=workspace) as compiled:
            await scaled.serve(
                compiled,
                temporal,
                queue=queue,
                max_runs=max_runs,
                max_subtasks=max_subtasks,
                stop=stop,
                ready=ready,
            )

    try:
        asyncio.run(serve())
    except RuntimeError as exc:  # the server cannot be reached
        raise InputError(f"cannot serve through Temporal at {temporal}: {exc}") from None
    err.print("worker stopped")


def run_on_temporal(
    team: Team,
    payload: Mapping[str, Any],
    *,
    temporal: str,
    queue: str | None,
    run_id: str | None,
    json_out: bool,
) -> None:
    """``corral run --temporal``: submit the run and print its result like ``corral run``."""
    scaled = scale()

    async def go() -> Any:
        dispatcher = await scaled.Dispatcher.connect(temporal)
        return await dispatcher.run(team, payload, run_id=run_id, queue=queue)

    _finish(_how(temporal, team, queue), go, json_out)


def resume_on_temporal(
    run_id: str,
    *,
    temporal: str,
    team_file: Path | None,
    queue: str | None,
    decision: tuple[bool, str | None, Mapping[str, Any] | None],
    json_out: bool,
) -> None:
    """``corral resume --temporal``: send a paused run its decision (the ``decide``
    signal), or resume a failed or halted run on a worker; print the result."""
    scaled = scale()
    approve, reject, edit = decision
    decided = approve or reject is not None or edit is not None
    team = load_team(team_file) if team_file is not None else None
    if not decided and queue is None and team is None:
        raise InputError("resuming on Temporal needs --team FILE or --queue NAME", field="team")

    async def go() -> Any:
        dispatcher = await scaled.Dispatcher.connect(temporal)
        if decided:
            return await dispatcher.decide(run_id, approve=approve, reject=reject, edit=edit)
        assert team is not None or queue is not None
        return await dispatcher.resume(run_id, queue=queue or scaled.queue_of(team))

    _finish(_how(temporal, team, queue), go, json_out)


def _finish(how: str, go: Callable[[], Coroutine[Any, Any, Any]], json_out: bool) -> None:
    """Wait for the run's result and print it like ``corral run``; a refused request
    exits 2, a run that was cancelled 6 and one whose workflow failed 1, each with its
    message and no traceback. (``corral.cli._exit`` takes the process out.)"""
    try:
        finish(how, asyncio.run(go()), json_out)
    except RunError as exc:
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        from temporalio.exceptions import CancelledError

        cancelled = isinstance(exc.__cause__, CancelledError)
        raise typer.Exit(EXIT["cancelled" if cancelled else "failed"]) from None


def _how(temporal: str, team: Team | None, queue: str | None) -> str:
    """The options that reach a Temporal run again (for the hints ``finish`` prints)."""
    how = f"--temporal {temporal}"
    if queue is not None:
        return f"{how} --queue {queue}"
    if team is not None and team.plan.source is not None:
        return f"{how} --team {team.plan.source}"
    return how
