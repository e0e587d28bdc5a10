"""A worker process of ``ProcessPool``: it opens the teams and the workspace itself and
runs the graphs the HTTP process sends it over a pipe, sending back each stream chunk and
each run's end.

Messages in: ``("run", run_id, team, start, config, stream_mode)``, ``("cancel",
run_id)``, ``("metrics", token)``, ``("stop",)``. Out: ``("ready", pid, {team:
fingerprint})``, ``("begun",
run_id, checkpoint_id)``, ``("chunk", run_id, mode, data)``, ``("end", run_id, error)``,
``("metrics", token, text)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from corral.errors import InputError
from corral.graphs import App, load_team
from corral.manifest import TeamSpec
from corral.observability import Metrics
from corral.server._jobs import Start, chunks, error_of

Team = TeamSpec | str | Path


def compile_teams(teams: Sequence[Team], db: str | Path | None) -> list[App]:
    """The teams' apps, one metrics registry for all; distinct names, at least one."""
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


def team_files(teams: Sequence[Team]) -> list[str | Path]:
    """The files a worker process loads the teams from (a spec: the file it came from)."""
    files: list[str | Path] = []
    for team in teams:
        if not isinstance(team, TeamSpec):
            files.append(team)
        elif team.plan.source is not None:
            files.append(team.plan.source)
        else:
            raise InputError(
                f"team {team.plan.name!r} was built in Python, and worker processes load "
                "teams from their files: pass its file, or workers=0",
                field="workers",
            )
    return files


def main(conn: Connection, teams: Sequence[Team], db: str | Path | None) -> None:
    """The worker process's entry point (multiprocessing, spawn)."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # the HTTP process stops it (or its death)
        signal.signal(sig, signal.SIG_IGN)
    apps = compile_teams(teams, db)
    try:
        asyncio.run(_Worker(conn, {a.plan.name: a for a in apps}).serve())
    finally:
        for app in apps:
            app.close()


class _Worker:
    def __init__(self, conn: Connection, apps: dict[str, App]) -> None:
        self.conn = conn
        self.apps = apps
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stopped = asyncio.Event()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        # A thread reads the pipe, so the HTTP process's sends never wait on this loop.
        reader = threading.Thread(target=self._read, args=(loop,), daemon=True)
        reader.start()
        found = {name: app.plan.fingerprint for name, app in self.apps.items()}
        self.conn.send(("ready", os.getpid(), found))
        await self.stopped.wait()
        running = list(self.tasks.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):  # the HTTP process is gone
                message = ("stop",)
            loop.call_soon_threadsafe(self._handle, message)
            if message[0] == "stop":
                return

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "run":
            _, run_id, team, start, config, stream_mode = message
            self.tasks[run_id] = asyncio.create_task(
                self._run(run_id, self.apps[team], start, config, stream_mode)
            )
        elif kind == "cancel" and message[1] in self.tasks:
            self.tasks[message[1]].cancel()
        elif kind == "metrics":
            app = next(iter(self.apps.values()))
            self._send(("metrics", message[1], app.metrics.text()))
        elif kind == "stop":
            self.stopped.set()

    def _send(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):  # the HTTP process is gone: nobody to tell
            self.conn.send(message)

    async def _run(
        self, run_id: str, app: App, start: Start, config: Any, stream_mode: list[str]
    ) -> None:
        error: dict[str, Any] | None = None
        try:
            snapshot = await app.graph.aget_state(app.config(config["configurable"]["thread_id"]))
            at = (snapshot.config or {}).get("configurable", {}).get("checkpoint_id")
            self._send(("begun", run_id, at))
            async for mode, data in chunks(app, start, config, stream_mode, run_id):
                self._send(("chunk", run_id, mode, data))
        except asyncio.CancelledError:
            pass  # cancelled: its checkpoints stay
        except Exception as exc:  # the run failed: its error, as the client reads it
            error = error_of(exc)
        finally:
            del self.tasks[run_id]
        self._send(("end", run_id, error))
