"""The ``corral`` command line. Its exit statuses are a stable contract:

0 completed, 1 failed, 2 bad manifest / input / arguments or a damaged workspace,
3 halted by a guard, 4 paused waiting for a person; ``corral doctor``: 0 healthy,
5 damaged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from corral import __version__
from corral.cli._common import (
    DAMAGED,
    USER_ERROR,
    DbOption,
    DirectionOption,
    FileArg,
    JsonOption,
    LegendOption,
    OutputOption,
    ScaleOption,
    TeamOption,
    app,
    draw,
    finish,
    interruptible,
    load_team,
    many,
    read_input,
    where,
    workspace_at,
    write_out,
)
from corral.cli._exit import Exit
from corral.cli._resume import diff, resume
from corral.cli._runs import runs_app
from corral.cli._serve import serve
from corral.cli._temporal import QueueOption, TemporalOption, run_on_temporal, worker
from corral.errors import InputError, UserError
from corral.workspace import DEFAULT_DB

if TYPE_CHECKING:  # commands import the runtime they use, so --help stays fast
    from corral.workspace import Checkup

app.add_typer(runs_app, name="runs")
__all__ = ["diff", "main", "resume", "serve", "worker"]


def main() -> None:
    """Entry point: user mistakes exit 2 with a message, never a traceback."""
    err = Console(stderr=True)
    out = Exit()
    try:
        code = app(standalone_mode=False)  # returns the code of a raised typer.Exit
    except UserError as exc:
        # The message is text, not markup: "corral[providers]" and "list[str]" stay as written.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        out.now(USER_ERROR)
    except typer.Exit as exc:
        out.now(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("[yellow]interrupted[/]")
        out.now(130)
    except typer.TyperException as exc:  # usage errors: unknown command, bad option
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
        out.now(USER_ERROR)
    out.now(code if isinstance(code, int) else 0)


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"corral {__version__}")
        raise typer.Exit(0)


@app.callback()
def options(
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Write corral's log records to stderr as JSON lines.")
    ] = False,
    version: Annotated[  # noqa: ARG001 (acted on by its eager callback)
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print corral's version and exit."
        ),
    ] = False,
) -> None:
    """Run teams of LLM agents as compiled, guarded LangGraph graphs."""
    if log_json:
        from corral.observability import log_json as send_logs

        send_logs()


@app.command()
def validate(file: FileArg) -> None:
    """Check a team file; print every problem with file:line and the fix."""
    team = load_team(file)
    team.check_models()
    Console(highlight=False).print(
        f"[green]ok[/] {escape(str(file))}: team [bold]{escape(team.name)}[/] with "
        f"{many(len(team.agents), 'agent')} and {many(len(team.flow.edges), 'edge')}"
    )


@app.command()
def schema(output: OutputOption = None) -> None:
    """Print the team file's JSON Schema (for editors: a yaml-language-server line)."""
    from corral.manifest import manifest_json_schema

    text = json.dumps(manifest_json_schema(), indent=2)
    if output is None:
        typer.echo(text)
    else:
        write_out(output, text + "\n")


@app.command()
def graph(
    file: FileArg,
    *,
    format: Annotated[
        str,
        typer.Option("--format", metavar="FORMAT", help="mermaid, dot, svg, png, json or graphml."),
    ] = "mermaid",
    output: OutputOption = None,
    scale: ScaleOption = None,
    direction: DirectionOption = "TB",
    legend: LegendOption = True,
) -> None:
    """Draw the team's graph, offline."""
    draw(load_team(file).plan, format, output, scale=scale, direction=direction, legend=legend)


@app.command()
def run(
    file: FileArg,
    *,
    input: Annotated[
        str | None,
        typer.Option("--input", metavar="JSON", help="JSON, @PATH to a JSON file, or - for stdin."),
    ] = None,
    db: DbOption = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id", metavar="ID", help="Id for the run (letters, digits, . _ -) [default: new]."
        ),
    ] = None,
    json_out: JsonOption = False,
    temporal: TemporalOption = None,
    queue: QueueOption = None,
) -> None:
    """Run a team on an input and print the result."""
    team = load_team(file)
    payload = read_input(input)
    if temporal is not None:
        run_on_temporal(
            team, payload, temporal=temporal, queue=queue, run_id=run_id, json_out=json_out
        )
        return
    from corral.graphs import check_run_id, new_run_id

    run_id = check_run_id(run_id) if run_id is not None else new_run_id()  # said if stopped
    with (
        team.compile(db=where(db, team)) as compiled,
        interruptible(run_id, compiled.db_path) as live,
    ):
        finish(compiled, compiled.run(payload, run_id=run_id, on_step=live.step), json_out)


@app.command()
def budget(
    db: DbOption = None,
    team_file: TeamOption = None,
    day: Annotated[
        str | None,
        typer.Option("--day", metavar="DATE", help="YYYY-MM-DD (UTC) [default: today]."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Tokens and cost used per agent and for the team on a day, against the limits."""
    when = day or datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        datetime.strptime(when, "%Y-%m-%d")
    except ValueError:
        raise InputError(f"--day {when!r} is not a date; use YYYY-MM-DD", field="day") from None
    with workspace_at(where(db, team_file)) as workspace:
        lines = workspace.ledger.report(when)
    if json_out:
        typer.echo(json.dumps({"day": when, "agents": lines[:-1], "team": lines[-1]}))
        return
    table = Table("agent", "calls", "tokens", "limit", "%", "cost (USD)", title=f"budget {when}")
    for line in lines:
        cost = "unknown" if line["cost_usd"] is None else f"{line['cost_usd']:.4f}"
        if line["cost_limit"]:
            cost += f" / {line['cost_limit']:g}"
        table.add_row(
            escape(line["agent"]),
            str(line["calls"]),
            str(line["tokens"]),
            str(line["token_limit"] or "-"),
            f"{line['token_pct']:.1f}" if line["token_pct"] is not None else "-",
            cost,
        )
    Console().print(table)


@app.command()
def doctor(
    file: Annotated[
        Path | None,
        typer.Argument(
            metavar="[FILE]",
            help=f"The workspace file to check [default: ${{CORRAL_DB}}, else {DEFAULT_DB}].",
            show_default=False,
        ),
    ] = None,
    recover: Annotated[
        Path | None,
        typer.Option(
            "--recover", metavar="NEW", help="Also copy what can be read into this new file."
        ),
    ] = None,
) -> None:
    """Check a workspace file (integrity check, readable rows per table) without writing
    to it; exit 0 if healthy, 5 if damaged."""
    from corral.workspace import check_workspace, recover_workspace

    out = Console(highlight=False, soft_wrap=True)
    checked = where(file)
    if not isinstance(checked, Path):
        raise InputError(
            "corral doctor checks a SQLite workspace file; check a Postgres workspace "
            "with Postgres's own tools (pg_amcheck)",
            field="db",
        )
    file = checked
    copied = None if recover is None else recover_workspace(file, recover)
    found = check_workspace(file)
    if found.ok:
        out.print(f"[green]ok[/] {escape(str(file))}: PRAGMA integrity_check found no problem")
    else:
        count = len(found.problems)
        out.print(
            f"[bold red]damaged[/] {escape(str(file))}: PRAGMA integrity_check found "
            f"{count} problem{'s' if count != 1 else ''}"
        )
        for problem in found.problems[:10]:
            out.print(f"  - {escape(problem)}")
        if count > 10:
            out.print(f"  ... and {count - 10} more")
    written = copied is not None and copied.schema_error is None
    if written:
        out.print(f"copied what could be read into {escape(str(recover))}:")
    _tables(out, copied or found)
    if written:
        out.print(f"open it like any workspace: corral runs --db {escape(str(recover))}")
    elif copied is None and not found.ok and found.schema_error is None:
        out.print(f"copy out what can be read: corral doctor {escape(str(file))} --recover NEW.db")
    raise typer.Exit(0 if found.ok else DAMAGED)


def _tables(out: Console, found: Checkup) -> None:
    if found.schema_error is not None:
        out.print(
            f"the list of tables cannot be read ({escape(found.schema_error)}): "
            "nothing can be copied out of it"
        )
        return
    for table in found.tables:
        rows = f"{table.rows} row{'s' if table.rows != 1 else ''}"
        lost = f"[red], then a damaged page ({escape(table.error)})[/]" if table.error else ""
        out.print(f"  {escape(table.name):<20} {rows}{lost}")
