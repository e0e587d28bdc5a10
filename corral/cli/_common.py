"""What every command shares: exit statuses, options, the workspace, input and output."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from corral.errors import InputError, Rejected
from corral.workspace import DEFAULT_DB, postgres_url, workspace_label

if TYPE_CHECKING:  # the runtime is imported by the commands that use it: --help stays fast
    from corral.graphs import App, RunResult, StepEvent, Team
    from corral.manifest import TeamPlan
    from corral.workspace import OpenWorkspace

EXIT = {"completed": 0, "failed": 1, "halted": 3, "paused": 4, "cancelled": 6}
USER_ERROR = 2
DAMAGED = 5
"""``corral doctor``: the workspace file is damaged."""

ENV_DB = "CORRAL_DB"
"""The environment variable naming the workspace when ``--db`` is not given."""

app = typer.Typer(
    name="corral",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help is plain text: brackets in it are never eaten as markup
    help="Run teams of LLM agents as compiled, guarded LangGraph graphs.",
)

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        metavar="PATH",
        help=f"Workspace SQLite file or postgresql:// URL. Without it: ${ENV_DB}, then "
        f"the team file's checkpoint.db, then {DEFAULT_DB}.",
    ),
]
TeamOption = Annotated[
    Path | None,
    typer.Option(
        "--team",
        metavar="FILE",
        help="Team file: its checkpoint.db is the workspace when neither --db nor "
        f"${ENV_DB} is given.",
    ),
]
MovedTeamOption = Annotated[
    Path | None,
    typer.Option(
        "--team",
        metavar="FILE",
        help="Team file, if it moved since the run started (its checkpoint.db is the "
        f"workspace when neither --db nor ${ENV_DB} is given).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
FileArg = Annotated[Path, typer.Argument(metavar="FILE", help="Team file (YAML).")]
OutputOption = Annotated[
    Path | None,
    typer.Option("-o", "--output", metavar="PATH", help="Write to this file (needed for png)."),
]

ScaleOption = Annotated[
    float | None,
    typer.Option(
        "--scale",
        metavar="N",
        help="Size multiplier for svg and png, above 0 and at most 8 (default: 1 for svg, "
        "2 for png).",
    ),
]
DirectionOption = Annotated[
    str,
    typer.Option("--direction", metavar="TB|LR", help="TB (top to bottom) or LR (left to right)."),
]
LegendOption = Annotated[
    bool, typer.Option("--legend/--no-legend", help="Add a key to the drawing or leave it out.")
]


def where(db: Path | None, team: Team | Path | None = None) -> Path | str:
    """The workspace a command uses, said on stderr: ``--db``, then ``$CORRAL_DB``, then
    the team file's ``checkpoint.db``, then the default."""
    from corral.graphs import db_path

    env = os.environ.get(ENV_DB)
    if isinstance(team, Path) and db is None and not env:  # read only when it decides
        team = load_team(team)
    path: Path | str
    if db is not None:  # ~ is the home folder here too (--db=~/x.db, $CORRAL_DB in a .env)
        path, source = db.expanduser(), "--db"
    elif env:
        path, source = Path(env).expanduser(), f"${ENV_DB}"
    elif team is not None and not isinstance(team, Path) and team.plan.checkpoint.db is not None:
        path, source = db_path(team.plan, None), "checkpoint.db of the team file"
    else:
        path, source = DEFAULT_DB, "the default"
    url = postgres_url(path)  # a URL that came as a Path lost a '/': read it back
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"workspace: {escape(workspace_label(path))} ({escape(source)})", style="dim"
    )
    return path if url is None else url


def load_team(path: Path) -> Team:
    """Load a team file. The runtime is imported here, on first use, not at start-up;
    it then lives until exit, so ``gc.freeze`` keeps it out of the collections that
    loading a large team sets off."""
    from corral.graphs import load_team as load

    gc.freeze()
    return load(path)


def team_of(run_id: str, recorded: str | None, team_file: Path | None) -> Path:
    """The team file of a run: ``--team`` if given, else the one it started from; a
    run started from Python, or whose file is gone, asks for ``--team``."""
    if team_file is not None:
        return team_file
    if recorded is None:
        raise InputError(f"run {run_id!r} was started from Python; pass --team FILE", field="team")
    if not Path(recorded).exists():
        raise InputError(
            f"run {run_id!r} was started from the team file {recorded}, which is not there "
            "any more; pass --team FILE with its new place",
            field="team",
        )
    return Path(recorded)


@contextmanager
def workspace_at(path: Path | str) -> Iterator[OpenWorkspace]:
    """An existing workspace (commands that read never create a file; a Postgres
    database gets corral's tables if it has none)."""
    local = postgres_url(path) is None
    if local and (not Path(path).is_file() or Path(path).stat().st_size == 0):
        empty = " (an empty file)" if Path(path).is_file() else ""
        empty = " (a folder; give the workspace file in it)" if Path(path).is_dir() else empty
        raise InputError(
            f"there is no workspace at {path}{empty}; pass the --db that the runs used "
            "(`corral run` says which it used)",
            field="db",
        )
    from corral.workspace import open_workspace

    workspace = open_workspace(path)
    try:
        yield workspace
    finally:
        workspace.close()


def _not_json(constant: str) -> Any:
    """Python's JSON reader takes NaN and Infinity; JSON has no such numbers, and a run
    given one printed them into output that JSON readers (jq) refuse."""
    raise ValueError(f"{constant} is not a JSON number")


def read_input(raw: str | None, option: str = "--input") -> dict[str, Any]:
    """The JSON object ``option`` gives: inline, ``@file`` or ``-`` (stdin)."""
    field = option.lstrip("-")
    if raw is None:
        raise InputError(
            f"no input given; pass {option} '{{...}}', {option} @file.json or {option} - (stdin)",
            field=field,
        )
    source = option
    try:
        if raw == "-":
            raw, source = sys.stdin.read(), "stdin"
        elif raw.startswith("@"):
            path = Path(raw[1:])
            source = str(path)
            raw = path.read_text(encoding="utf-8")
        raw = raw.removeprefix("\ufeff")  # the byte order mark some editors write
    except OSError as exc:
        raise InputError(f"cannot read input file {source}: {exc.strerror}", field=field) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8",
            field=field,
        ) from None
    try:
        value = json.loads(raw, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            field=field,
        ) from None
    except RecursionError:
        raise InputError(f"{source} is nested too deeply to read", field=field) from None
    except ValueError as exc:  # for instance an integer of thousands of digits
        raise InputError(f"{source} cannot be read: {exc}", field=field) from None
    if not isinstance(value, dict):
        raise InputError(f"{source} must be a JSON object, not {type(value).__name__}", field=field)
    try:  # JSON's \ud800 escapes give text no model, file or database can take
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{source} has text that is not valid Unicode "
            f"({exc.object[exc.start : exc.end]!r}, half of a surrogate pair); remove it",
            field=field,
        ) from None
    return value


class Live:
    """Live progress on stderr: one line per finished agent, with running totals."""

    def __init__(self) -> None:
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.tokens = 0
        self.steps = 0
        self.interrupted = False
        """Ctrl-C was pressed (``interruptible``): the run stops at its next step."""

    def step(self, event: StepEvent) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        tokens = event.usage["input_tokens"] + event.usage["output_tokens"]
        calls = event.usage["llm_calls"]
        self.tokens += tokens
        self.steps += 1
        detail = (
            f"{tokens} tokens, {calls} call{'s' if calls != 1 else ''}" if calls else "function"
        )
        self.console.print(
            f"  [green]✓[/] [bold]{escape(event.agent)}[/] → {escape(event.target)} "
            f"[dim]{escape(event.schema)} · {detail} · {event.seconds * 1000:.0f} ms · "
            f"total {self.steps} step{'s' if self.steps != 1 else ''}, "
            f"{self.tokens} tokens[/]"
        )


@contextmanager
def interruptible(run_id: str, db: Path | str) -> Iterator[Live]:
    """Ctrl-C while ``run_id`` goes (recorded ``cancelled``, its completed steps kept):
    say how it goes on, and exit 130. Yields the run's live progress, which raises the
    Ctrl-C again at the next step if it was lost on its way (LangGraph ignores any
    exception in a future's done-callback, a ``KeyboardInterrupt`` too)."""
    live = Live()

    def stop(*_: Any) -> None:
        live.interrupted = True
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, stop) if main else None
    try:
        yield live
    except KeyboardInterrupt:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[yellow]interrupted:[/] run {escape(run_id)} is cancelled, its completed steps "
            f"kept; go on with: corral resume {escape(run_id)} --db {escape(str(db))}"
        )
        raise typer.Exit(130) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def finish(compiled: App | str, result: RunResult, json_out: bool) -> None:
    """Print ``result``; exit with its status. ``compiled``: the app, or (a run on Temporal
    workers) the options that reach the run again, such as ``--temporal HOST:PORT``."""
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    db = escape(compiled if isinstance(compiled, str) else f"--db {compiled.db_path}")
    run_id = escape(result.run_id)
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
    else:
        colour = "green" if result.ok else "red"
        out.print(f"[bold {colour}]{result.status}[/] run {escape(result.run_id)}")
        if result.output is not None:
            out.print_json(data=result.output)
        out.print(f"path: {escape(' → '.join(result.path)) or '(none)'}")
        u = result.usage
        cost = "unknown" if result.cost_usd is None else f"{result.cost_usd:.4f} USD"
        out.print(
            f"usage: {u['input_tokens']} input + {u['output_tokens']} output tokens, "
            f"{u['llm_calls']} model calls, cost {cost}"
        )
    for error in result.errors:
        agent = f" ({escape(error.agent)})" if error.agent else ""
        err.print(f"[red]{type(error).__name__}{agent}:[/] {escape(str(error))}")
    if result.status == "paused":
        err.print(
            f"waiting for a person; decide with: corral resume {run_id} {db} "
            "--approve | --reject 'reason' | --edit JSON"
        )
    elif any(isinstance(error, Rejected) for error in result.errors):  # resuming says it again
        err.print("the review rejected the run's work, so the run is over; start a new run")
    elif result.status in ("failed", "halted", "cancelled"):
        err.print(f"resume with: corral resume {run_id} {db}")
    raise typer.Exit(EXIT[result.status])


def draw(
    plan: TeamPlan,
    fmt: str,
    output: Path | None,
    *,
    highlight: Sequence[str] = (),
    scale: float | None,
    direction: str,
    legend: bool,
) -> None:
    """Draw the team of ``plan`` (with a run's path) in ``fmt`` to ``output`` or stdout."""
    from corral.graphs import FORMATS, render

    if fmt not in FORMATS:
        raise InputError(
            f"--format {fmt!r} is not known; use one of {', '.join(FORMATS)}", field="format"
        )
    drawn = render(plan, fmt, highlight, scale=scale, direction=direction, legend=legend)
    emit(drawn, output, fmt)


def emit(drawn: str | bytes, output: Path | None, fmt: str) -> None:
    if isinstance(drawn, bytes):
        if output is None:
            raise InputError(f"--format {fmt} is binary; give -o PATH", field="output")
        write_out(output, drawn)
    elif output is None:
        typer.echo(drawn, nl=not drawn.endswith("\n"))
    else:
        write_out(output, drawn)


def write_out(output: Path, data: str | bytes) -> None:
    """Write ``-o PATH``; a path that cannot be written is the user's to fix."""
    try:
        if isinstance(data, bytes):
            output.write_bytes(data)
        else:
            output.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror}", field="output") from None


def many(count: int, thing: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{count} {thing}{'' if count == 1 else 's'}"
