"""The ``corral`` command line. Its exit statuses are a stable contract:

0 completed, 1 failed, 2 bad manifest / input / arguments, 3 halted by a guard,
4 paused waiting for a person.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from corral import observability
from corral.errors import InputError, UserError
from corral.graphs import FORMATS, App, RunResult, StepEvent, Team, load_team, render
from corral.manifest import manifest_json_schema
from corral.workspace import DEFAULT_DB, SqliteWorkspace, open_workspace

EXIT = {"completed": 0, "failed": 1, "halted": 3, "paused": 4}
USER_ERROR = 2

app = typer.Typer(
    name="corral",
    no_args_is_help=True,
    add_completion=False,
    help="Run teams of LLM agents as compiled, guarded LangGraph graphs.",
)

DbOption = Annotated[
    Path | None, typer.Option("--db", help=f"Workspace SQLite file [default: {DEFAULT_DB}]")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
FileArg = Annotated[Path, typer.Argument(help="Team file (YAML).")]


def main() -> None:
    """Entry point: user mistakes exit 2 with a message, never a traceback."""
    err = Console(stderr=True)
    try:
        code = app(standalone_mode=False)  # returns the code of a raised typer.Exit
    except UserError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(USER_ERROR)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown command, bad option
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"[bold red]error:[/] {exc}")
        sys.exit(USER_ERROR)
    sys.exit(code if isinstance(code, int) else 0)


@app.callback()
def options(
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Write corral's log records to stderr as JSON lines.")
    ] = False,
) -> None:
    """Run teams of LLM agents as compiled, guarded LangGraph graphs."""
    if log_json:
        observability.log_json()


@app.command()
def validate(file: FileArg) -> None:
    """Check a team file; print every problem with file:line and the fix."""
    team = load_team(file)
    Console().print(
        f"[green]ok[/] {file}: team [bold]{team.name}[/] with "
        f"{len(team.agents)} agents and {len(team.flow.edges)} edges"
    )


@app.command()
def schema(output: Annotated[Path | None, typer.Option("-o", "--output")] = None) -> None:
    """Print the team file's JSON Schema (for editors: a yaml-language-server line)."""
    text = json.dumps(manifest_json_schema(), indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")


@app.command()
def graph(
    file: FileArg,
    format: Annotated[
        str, typer.Option("--format", help="mermaid, dot, svg, png, json or graphml")
    ] = "mermaid",
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
) -> None:
    """Draw the team's graph, offline."""
    _emit(render(_format(load_team(file), format).plan, format), output, format)


def _format(team: Team, fmt: str) -> Team:
    if fmt not in FORMATS:
        raise InputError(
            f"--format {fmt!r} is not known; use one of {', '.join(FORMATS)}", field="format"
        )
    return team


def _emit(drawn: str | bytes, output: Path | None, fmt: str) -> None:
    if isinstance(drawn, bytes):
        if output is None:
            raise InputError(f"--format {fmt} is binary; give -o PATH", field="output")
        output.write_bytes(drawn)
    elif output is None:
        typer.echo(drawn, nl=not drawn.endswith("\n"))
    else:
        output.write_text(drawn, encoding="utf-8")


@app.command()
def run(
    file: FileArg,
    input: Annotated[
        str | None, typer.Option("--input", help="JSON, @PATH to a JSON file, or - for stdin.")
    ] = None,
    db: DbOption = None,
    run_id: Annotated[str | None, typer.Option("--run-id")] = None,
    json_out: JsonOption = False,
) -> None:
    """Run a team on an input and print the result."""
    team = load_team(file)
    payload = _read_input(input)
    with _compile(team, db) as compiled:
        _finish(compiled, compiled.run(payload, run_id=run_id, on_step=_Live().step), json_out)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue.")],
    *,
    db: DbOption = None,
    team_file: Annotated[
        Path | None, typer.Option("--team", help="Team file, if it moved since the run started.")
    ] = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Let the reviewed work through.")
    ] = False,
    reject: Annotated[str | None, typer.Option("--reject", help="End the run, saying why.")] = None,
    edit: Annotated[
        str | None, typer.Option("--edit", help="Replace the reviewed payload: JSON or @PATH.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Continue a failed, crashed or paused run; completed nodes do not run again."""
    path = db or DEFAULT_DB
    with _workspace(path) as workspace:
        record = workspace.runs.get(run_id)
    if record is None:
        raise InputError(
            f"no run {run_id!r} in {path}; `corral runs --db {path}` lists them", field="run_id"
        )
    manifest = team_file or (Path(record.manifest) if record.manifest else None)
    if manifest is None:
        raise InputError(f"run {run_id!r} was started from Python; pass --team FILE", field="team")
    edited = _read_input(edit) if edit is not None else None
    with _compile(load_team(manifest), path) as compiled:
        _finish(
            compiled,
            compiled.resume(
                run_id, approve=approve, reject=reject, edit=edited, on_step=_Live().step
            ),
            json_out,
        )


@app.command()
def budget(
    db: DbOption = None,
    day: Annotated[
        str | None, typer.Option("--day", help="YYYY-MM-DD (UTC) [default: today]")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Tokens and cost used per agent and for the team on a day, against the limits."""
    when = day or datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        datetime.strptime(when, "%Y-%m-%d")
    except ValueError:
        raise InputError(f"--day {when!r} is not a date; use YYYY-MM-DD", field="day") from None
    with _workspace(db or DEFAULT_DB) as workspace:
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
            line["agent"],
            str(line["calls"]),
            str(line["tokens"]),
            str(line["token_limit"] or "-"),
            f"{line['token_pct']:.1f}" if line["token_pct"] is not None else "-",
            cost,
        )
    Console().print(table)


runs_app = typer.Typer(help="List, prune and delete runs. Without a command: list them.")
app.add_typer(runs_app, name="runs")


@runs_app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    db: DbOption = None,
    json_out: JsonOption = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only runs waiting for a person.")
    ] = False,
) -> None:
    """List the runs in a workspace, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    with _workspace(db or DEFAULT_DB) as workspace:
        records = workspace.runs.list(limit=limit, status="paused" if pending else None)
        breakers = workspace.breakers.states()
    if json_out:
        typer.echo(
            json.dumps(
                [
                    {
                        "run_id": r.run_id,
                        "team": r.team,
                        "status": r.status,
                        "crashed": r.stale,
                        "started_at": r.started_at,
                        "updated_at": r.updated_at,
                        "path": r.path,
                        "usage": r.usage,
                    }
                    for r in records
                ]
            )
        )
        return
    table = Table("run id", "team", "status", "started", "steps", "tokens", "waiting on")
    for r in records:
        status = "crashed (resumable)" if r.stale else r.status
        tokens = r.usage.get("input_tokens", 0) + r.usage.get("output_tokens", 0)
        waiting = next(
            (e.get("message", "") for e in r.errors if e.get("type") == "ReviewPending"), ""
        )
        table.add_row(
            r.run_id, r.team, status, r.started_at[:19], str(len(r.path)), str(tokens), waiting
        )
    console = Console()
    console.print(table)
    for agent, state in breakers.items():
        console.print(
            f"circuit breaker of {agent}: {state['state']} after {state['failures']} failures"
        )


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    *,
    db: DbOption = None,
    json_out: JsonOption = False,
    format: Annotated[
        str | None,
        typer.Option("--format", help="draw the team with the run's path: " + ", ".join(FORMATS)),
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    team_file: Annotated[Path | None, typer.Option("--team")] = None,
) -> None:
    """A run's trace as a tree (or --json), or its path drawn on the team (--format)."""
    path = db or DEFAULT_DB
    with _workspace(path) as workspace:
        record = workspace.runs.get(run_id)
    if record is None:
        raise InputError(f"no run {run_id!r} in {path}", field="run_id")
    manifest = team_file or (Path(record.manifest) if record.manifest else None)
    if manifest is None:
        raise InputError(f"run {run_id!r} was started from Python; pass --team FILE", field="team")
    team = load_team(manifest)
    if format is not None:
        _emit(render(_format(team, format).plan, format, record.path), output, format)
        return
    with _compile(team, path) as compiled:
        trace = compiled.trace(run_id)
    if json_out:
        typer.echo(json.dumps([e.to_dict() for e in trace], default=str))
        return
    start = trace[0].at if trace else 0.0
    tree = Tree(f"[bold]run {run_id}[/] · {record.status} · {record.team}")
    branch = tree
    for event in trace:
        line = (
            f"[dim]{event.at - start:+.3f}s[/] [cyan]{event.kind}[/] "
            + (f"[bold]{event.agent}[/] " if event.agent else "")
            + escape(event.summary)
        )
        if event.kind == "step":
            branch = tree.add(line)
        else:
            branch.add(line)
    Console(highlight=False).print(tree)


@runs_app.command("prune")
def runs_prune(
    keep: Annotated[int, typer.Option("--keep", min=1, help="Checkpoints to keep per run.")] = 1,
    db: DbOption = None,
) -> None:
    """Keep only the newest checkpoints of completed runs (failed or paused runs keep
    their history so they can be resumed)."""
    with _workspace(db or DEFAULT_DB) as workspace:
        finished = [r.run_id for r in workspace.runs.list(limit=1_000_000, status="completed")]
        removed = workspace.saver.keep_last(finished, keep)
    Console().print(
        f"pruned {removed} checkpoints from {len(finished)} completed runs "
        f"(kept the newest {keep} of each)"
    )


@runs_app.command("delete")
def runs_delete(
    run_id: Annotated[str, typer.Argument(help="The run to delete.")], db: DbOption = None
) -> None:
    """Delete a run: its checkpoints, writes and record."""
    with _workspace(db or DEFAULT_DB) as workspace:
        record = workspace.runs.get(run_id)
        if record is None:
            raise InputError(f"no run {run_id!r} in {workspace.path}", field="run_id")
        if record.status == "running" and not record.stale:
            raise InputError(
                f"run {run_id!r} is still running (process {record.pid}); wait for it to end",
                field="run_id",
            )
        workspace.delete_run(run_id)
    Console().print(f"deleted run {run_id}")


@contextmanager
def _workspace(path: Path) -> Iterator[SqliteWorkspace]:
    workspace = open_workspace(path)
    try:
        yield workspace
    finally:
        workspace.close()


def _compile(team: Team, db: Path | None) -> App:
    return team.compile(db=db)


def _read_input(raw: str | None) -> dict[str, Any]:
    if raw is None:
        raise InputError(
            "no input given; pass --input '{...}', --input @file.json or --input - (stdin)",
            field="input",
        )
    source = "--input"
    if raw == "-":
        raw, source = sys.stdin.read(), "stdin"
    elif raw.startswith("@"):
        path = Path(raw[1:])
        try:
            raw, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise InputError(
                f"cannot read input file {path}: {exc.strerror}", field="input"
            ) from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            field="input",
        ) from None
    if not isinstance(value, dict):
        raise InputError(
            f"{source} must be a JSON object, not {type(value).__name__}", field="input"
        )
    return value


class _Live:
    """Live progress on stderr: one line per finished agent, with running totals."""

    def __init__(self) -> None:
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.tokens = 0
        self.steps = 0

    def step(self, event: StepEvent) -> None:
        tokens = event.usage["input_tokens"] + event.usage["output_tokens"]
        calls = event.usage["llm_calls"]
        self.tokens += tokens
        self.steps += 1
        detail = (
            f"{tokens} tokens, {calls} call{'s' if calls != 1 else ''}" if calls else "function"
        )
        self.console.print(
            f"  [green]✓[/] [bold]{event.agent}[/] → {event.target} "
            f"[dim]{event.schema} · {detail} · {event.seconds * 1000:.0f} ms · "
            f"total {self.steps} steps, {self.tokens} tokens[/]"
        )


def _finish(compiled: App, result: RunResult, json_out: bool) -> None:
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    db = compiled.db_path
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
    else:
        colour = "green" if result.ok else "red"
        out.print(f"[bold {colour}]{result.status}[/] run {result.run_id}")
        if result.output is not None:
            out.print_json(data=result.output)
        out.print(f"path: {' → '.join(result.path) or '(none)'}")
        u = result.usage
        cost = "unknown" if result.cost_usd is None else f"{result.cost_usd:.4f} USD"
        out.print(
            f"usage: {u['input_tokens']} input + {u['output_tokens']} output tokens, "
            f"{u['llm_calls']} model calls, cost {cost}"
        )
    for error in result.errors:
        agent = f" ({error.agent})" if error.agent else ""
        err.print(f"[red]{type(error).__name__}{agent}:[/] {escape(str(error))}")
    if result.status == "paused":
        err.print(
            f"waiting for a person; decide with: corral resume {result.run_id} --db {db} "
            "--approve | --reject 'reason' | --edit JSON"
        )
    elif result.status in ("failed", "halted"):
        err.print(f"resume with: corral resume {result.run_id} --db {db}")
    raise typer.Exit(EXIT[result.status])


__all__ = ["app", "main"]
