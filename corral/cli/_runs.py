"""``corral runs``: list, show, prune and delete the runs of a workspace."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from corral.cli._common import (
    DbOption,
    DirectionOption,
    JsonOption,
    LegendOption,
    MovedTeamOption,
    OutputOption,
    ScaleOption,
    TeamOption,
    draw,
    load_team,
    many,
    team_of,
    where,
    workspace_at,
)
from corral.errors import InputError
from corral.graphs import FORMATS
from corral.workspace import RunRecord, RunUsage

MOST_LISTED = 1_000_000
"""The largest ``--limit`` (a larger number is no use, and SQLite's integers end)."""
runs_app = typer.Typer(help="List, prune and delete runs. Without a command: list them.")


@runs_app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    *,
    db: DbOption = None,
    team_file: TeamOption = None,
    json_out: JsonOption = False,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, max=MOST_LISTED, metavar="N", help="Show at most N runs."),
    ] = 50,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only runs waiting for a person.")
    ] = False,
) -> None:
    """List the runs in a workspace, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    with workspace_at(where(db, team_file)) as workspace:
        # --pending: every paused run, cut to the limit once ordered as shown (escalated
        # reviews first, then the newest; a paused run waiting on no review not counted)
        if pending:
            records = workspace.runs.list(limit=MOST_LISTED, status="paused")
        else:
            records = workspace.runs.list(limit=limit)
        breakers = workspace.breakers.states()
    if pending:  # reviews escalated by their deadline first
        records = [r for r in records if _review(r) is not None]
        records.sort(key=lambda r: not (_review(r) or {}).get("escalated"))
        records = records[:limit]
    if json_out:
        typer.echo(json.dumps([_listed(r) for r in records]))
        return
    console = Console()
    console.print(_waiting(records) if pending else _table(records))
    for agent, state in breakers.items():
        console.print(
            f"circuit breaker of {escape(agent)}: {state['state']} "
            f"after {state['failures']} failures"
        )


PAYLOAD_WIDTH = 60
"""Characters of a waiting payload shown in the ``--pending`` table (``--json``: all)."""


def _review(record: RunRecord) -> dict[str, Any] | None:
    """What a paused run waits on (kind, reason, source, target, schema, payload)."""
    return next((e.get("review") for e in record.errors if e.get("type") == "ReviewPending"), None)


def _listed(r: RunRecord) -> dict[str, Any]:
    listed = {
        "run_id": r.run_id,
        "team": r.team,
        "status": r.status,
        "crashed": r.stale,
        "started_at": r.started_at,
        "updated_at": r.updated_at,
        "path": r.path,
        "usage": r.usage,
    }
    review = _review(r)
    if review is None:
        return listed
    deadline = {k: review.get(k) for k in ("deadline", "on_timeout")}
    return listed | {"review": review, **deadline, "escalated": bool(review.get("escalated"))}


def _cost(usage: RunUsage) -> str:
    return "unknown" if usage["cost_usd"] is None else f"{usage['cost_usd']:.4f}"


def _table(records: list[RunRecord]) -> Table:
    table = Table(
        "run id", "team", "status", "started", "steps", "calls", "tokens", "cost (USD)",
        "waiting on",
    )  # fmt: skip
    for r in records:
        review = _review(r)
        cells = (
            r.run_id,
            r.team,
            "crashed (resumable)" if r.stale else r.status,
            r.started_at[:19],
            str(len(r.path)),
            str(r.usage["llm_calls"]),
            str(r.usage["input_tokens"] + r.usage["output_tokens"]),
            _cost(r.usage),
            f"{review.get('kind')}: {review.get('reason')}" if review else "",
        )
        table.add_row(*map(escape, cells))
    return table


def _waiting(records: list[RunRecord]) -> Table:
    """What waits for a person: each review's kind, reason, edge, schema and payload."""
    table = Table("run id", "kind", "reason", "from → to", "schema", "deadline")
    table.add_column("payload", no_wrap=True, overflow="ellipsis", max_width=PAYLOAD_WIDTH)
    for r in records:
        review = _review(r) or {}
        payload = json.dumps(review.get("payload"), ensure_ascii=False)
        if len(payload) > PAYLOAD_WIDTH:
            payload = payload[: PAYLOAD_WIDTH - 1] + "…"
        cells = (
            r.run_id,
            str(review.get("kind")),
            str(review.get("reason")),
            f"{review.get('source')} → {review.get('target') or '-'}",
            str(review.get("schema")),
            "escalated" if review.get("escalated") else str(review.get("deadline") or "-"),
            payload,
        )
        table.add_row(*map(escape, cells))
    return table


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to show.")],
    *,
    db: DbOption = None,
    json_out: JsonOption = False,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="Draw the team with the run's path: " + ", ".join(FORMATS) + ".",
        ),
    ] = None,
    output: OutputOption = None,
    team_file: MovedTeamOption = None,
    scale: ScaleOption = None,
    direction: DirectionOption = "TB",
    legend: LegendOption = True,
) -> None:
    """A run's trace as a tree (or --json), or its path drawn on the team (--format)."""
    from corral.graphs import pinned_plan, read_trace
    from corral.observability import totals

    path = where(db, team_file)
    with workspace_at(path) as workspace:
        record = workspace.runs.get(run_id)
    if record is None:
        raise InputError(f"no run {run_id!r} in {path}", field="run_id")
    manifest = team_of(run_id, record.manifest, team_file)
    team = load_team(manifest)
    plan = pinned_plan(team.plan, record)  # the team the run ran under, if it changed
    if plan is not team.plan:
        _changed(run_id, rebuilt=plan is not None)
    if format is not None:
        draw(
            plan or team.plan,
            format,
            output,
            highlight=record.path,
            scale=scale,
            direction=direction,
            legend=legend,
        )
        return
    with workspace_at(path) as workspace:  # no runtime: no model, no credentials needed
        trace = read_trace(plan or team.plan, workspace, run_id)
    if json_out:
        typer.echo(json.dumps([e.to_dict() for e in trace], default=str))
        return
    start = trace[0].at if trace else 0.0
    tree = Tree(
        f"[bold]run {escape(run_id)}[/] · {record.status} · {escape(record.team)}\n"
        + totals(trace.usage)
    )
    branch = tree
    for event in trace:
        line = (
            f"[dim]{event.at - start:+.3f}s[/] [cyan]{event.kind}[/] "
            + (f"[bold]{escape(event.agent)}[/] " if event.agent else "")
            + escape(event.summary)
        )
        if event.kind == "step":
            branch = tree.add(line)
        else:
            branch.add(line)
    Console(highlight=False).print(tree)


@runs_app.command("prune")
def runs_prune(
    keep: Annotated[
        int, typer.Option("--keep", min=1, metavar="N", help="Checkpoints to keep per run.")
    ] = 1,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Also delete ended runs (completed, failed, halted) last updated longer "
            "ago than AGE (30d, 12h, 2w, 90m): checkpoints, record, calls, events, audit "
            "rows, tasks and their running totals.",
        ),
    ] = None,
    db: DbOption = None,
    team_file: TeamOption = None,
) -> None:
    """Keep only the newest checkpoints of completed runs (failed or paused runs keep
    their history so they can be resumed), optionally delete old ended runs, and VACUUM:
    a SQLite file gives the freed space back; Postgres reuses it for new rows."""
    age = None if older_than is None else seconds_of(older_than)
    with workspace_at(where(db, team_file)) as workspace:
        done = workspace.prune(older_than=age, keep=keep)
    deleted = "" if age is None else f"deleted {many(done.runs, 'run')} older than {older_than}; "
    reused = "; Postgres reuses the rest of the deleted rows' space" if done.reuses else ""
    Console().print(
        f"{deleted}pruned {many(done.checkpoints, 'checkpoint')} from "
        f"{many(done.completed, 'completed run')} "
        f"(kept the newest {keep} of each); freed {done.freed / 1e6:.1f} MB on disk"
        + (reused if done.vacuumed else "")
    )
    if not done.vacuumed:
        Console().print(
            "the database stayed busy, so VACUUM did not run (the freed space is reused "
            "all the same); run `corral runs prune` again when no run is going"
        )


_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LONGEST = 1000 * 366 * 86400


def seconds_of(age: str) -> float:
    """``30d`` (or ``90m``, ``12h``, ``2w``) in seconds."""
    found = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", age)
    if found is None:
        raise InputError(
            f"--older-than {age!r} is not an age; write a number and a unit: 90m, 12h, 30d or 2w",
            field="older_than",
        )
    seconds = int(found[1]) * _UNITS[found[2]]
    if seconds > _LONGEST:  # the cutoff would fall before year 1
        raise InputError(
            f"--older-than {age!r} is longer than 1000 years; give a shorter age",
            field="older_than",
        )
    return seconds


@runs_app.command("delete")
def runs_delete(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to delete.")],
    db: DbOption = None,
    team_file: TeamOption = None,
) -> None:
    """Delete a run: its checkpoints, writes and record."""
    with workspace_at(where(db, team_file)) as workspace:
        record = workspace.runs.get(run_id)
        if record is None:
            raise InputError(f"no run {run_id!r} in {workspace.where}", field="run_id")
        workspace.delete_run(run_id)  # refused while another process drives it
    Console().print(f"deleted run {escape(run_id)}")


def _changed(run_id: str, *, rebuilt: bool) -> None:
    """Say on stderr that the team changed since the run started, and what its trace is
    read against."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if rebuilt:
        err.print(
            f"note: the team changed since run {escape(run_id)} started; its trace is read "
            "against the team it ran under (its stored definition)"
        )
        return
    err.print(
        f"warning: the team changed since run {escape(run_id)} started, and the team it ran "
        "under no longer builds; its steps are read against the team as it is now, so the "
        "steps of agents it no longer has are left out",
        style="yellow",
    )
