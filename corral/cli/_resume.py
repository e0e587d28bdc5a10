"""``corral resume`` (one run, or every pending review at once) and ``corral diff``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from corral.cli._common import (
    DbOption,
    FileArg,
    JsonOption,
    MovedTeamOption,
    app,
    finish,
    interruptible,
    load_team,
    read_input,
    team_of,
    where,
    workspace_at,
)
from corral.cli._temporal import QueueOption, TemporalOption, resume_on_temporal
from corral.errors import InputError, ManifestError
from corral.graphs import held_by_workflow, on_workers_hint
from corral.workspace import RunRecord


@app.command()
def resume(
    run_id: Annotated[
        str | None,
        typer.Argument(metavar="[RUN_ID]", help="The run to continue (not with --expired)."),
    ] = None,
    *,
    db: DbOption = None,
    team_file: MovedTeamOption = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Let the reviewed work through.")
    ] = False,
    reject: Annotated[
        str | None,
        typer.Option(
            "--reject",
            metavar="REASON",
            help="Refuse the reviewed work, saying why (a payload ends the run; "
            "a tool call is not run).",
        ),
    ] = None,
    edit: Annotated[
        str | None,
        typer.Option("--edit", metavar="JSON", help="Replace the reviewed payload: JSON or @PATH."),
    ] = None,
    expired: Annotated[
        bool,
        typer.Option(
            "--expired",
            help="Instead of one run: let every review past its deadline be decided by its "
            "on_timeout; one line per pending review.",
        ),
    ] = False,
    approve_all: Annotated[
        bool,
        typer.Option(
            "--approve-all",
            help="Like --expired, and approve every other pending review, except a failed "
            "agent's escalation (it needs --edit) and reviews escalated by their deadline.",
        ),
    ] = False,
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate", help="Go on even if the team changed in ways the run cannot go on under."
        ),
    ] = False,
    json_out: JsonOption = False,
    temporal: TemporalOption = None,
    queue: QueueOption = None,
) -> None:
    """Continue a failed, crashed or paused run; completed nodes do not run again."""
    if temporal is not None and run_id is not None:  # a run on Temporal workers
        decision = (approve, reject, read_input(edit, "--edit") if edit is not None else None)
        resume_on_temporal(
            run_id,
            temporal=temporal,
            team_file=team_file,
            queue=queue,
            decision=decision,
            json_out=json_out,
        )
        return
    path = where(db, team_file)
    if expired or approve_all:
        if run_id is not None:
            raise InputError("give a RUN_ID or --expired/--approve-all, not both", field="run_id")
        _settle(path, team_file, approve_all=approve_all)
        return
    if run_id is None:
        raise InputError("give the RUN_ID to resume, or --expired/--approve-all", field="run_id")
    with workspace_at(path) as workspace:
        record = workspace.runs.get(run_id)
        held = held_by_workflow(workspace.runs, workspace.events, run_id)
    if record is None:
        raise InputError(
            f"no run {run_id!r} in {path}; `corral runs --db {path}` lists them", field="run_id"
        )
    if held:  # a worker left it waiting: driven here too, it would go on twice
        raise InputError(on_workers_hint(run_id), field="run_id")
    manifest = team_of(run_id, record.manifest, team_file)
    edited = read_input(edit, "--edit") if edit is not None else None
    team = load_team(manifest)
    _said_changes(record, team.plan.definition, team.plan.fingerprint, migrate)
    with team.compile(db=path) as compiled, interruptible(run_id, compiled.db_path) as live:
        finish(
            compiled,
            compiled.resume(
                run_id,
                approve=approve,
                reject=reject,
                edit=edited,
                migrate=migrate,
                on_step=live.step,
            ),
            json_out,
        )


def _said_changes(
    record: RunRecord, definition: Mapping[str, Any], fingerprint: str, migrate: bool
) -> None:
    """Say on stderr what changed in the team since the run started, if it goes on (an
    incompatible change without ``migrate`` is refused with the same lines)."""
    if record.definition is None or record.fingerprint == fingerprint:
        return
    from corral.manifest import diff_definitions

    changes = diff_definitions(record.definition, definition)
    if changes and (migrate or all(c.compatible for c in changes)):
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        how = "migrating" if migrate else "compatible"
        err.print(f"the team changed since run {escape(record.run_id)} started ({how}):")
        for change in changes:
            err.print(f"  {escape(str(change))}")


def _settle(path: Path | str, team_file: Path | None, *, approve_all: bool) -> None:
    """Settle the pending reviews of every team with paused runs in the workspace."""
    with workspace_at(path) as workspace:
        paused = workspace.runs.list(limit=1_000_000, status="paused")
    manifests = {team_file} if team_file else {Path(r.manifest) for r in paused if r.manifest}
    out = Console(highlight=False, soft_wrap=True)
    seen: set[str] = set()
    unreadable: set[Path] = set()
    for manifest in sorted(manifests):
        try:
            team = load_team(manifest)
        except ManifestError:
            if team_file is not None:  # the file the user named: its problems are the answer
                raise
            unreadable.add(manifest)  # its runs are left waiting; the other teams go on
            continue
        with team.compile(db=path) as compiled:
            for run_id, what, result in compiled.settle_reviews(approve_all=approve_all):
                seen.add(run_id)
                ended = f" -> {result.status}" if result is not None else ""
                out.print(f"{escape(run_id)}: {escape(what)}{ended}")
    for record in paused:
        if team_file is not None or record.run_id in seen:
            continue
        if record.manifest is None:
            out.print(f"{escape(record.run_id)}: left waiting (started from Python; pass --team)")
        elif Path(record.manifest) in unreadable:
            out.print(
                f"{escape(record.run_id)}: left waiting (team file {escape(record.manifest)} "
                "cannot be read; pass --team)"
            )


@app.command()
def diff(old: FileArg, new: FileArg) -> None:
    """What changed between two team files, and whether a paused run can go on under
    the new one (compatible) or needs `corral resume --migrate` (incompatible)."""
    from corral.manifest import diff_definitions

    before, after = load_team(old).plan.definition, load_team(new).plan.definition
    changes = diff_definitions(before, after)
    out = Console(highlight=False, soft_wrap=True)
    for change in changes:
        out.print(escape(str(change)))
    refused = sum(not c.compatible for c in changes)
    if not changes:
        out.print("no changes")
    elif refused:
        out.print(
            f"{refused} incompatible change{'s' if refused != 1 else ''}: runs started under "
            f"{escape(str(old))} resume under {escape(str(new))} only with --migrate"
        )
    else:
        out.print(f"all {len(changes)} changes are compatible: runs resume under the new file")
