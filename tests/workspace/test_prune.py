"""``prune`` and ``delete_run`` on every backend: old ended runs are forgotten in every
table, completed runs keep their newest checkpoints, the day totals still add up, and
the space is vacuumed; on Postgres the scans behind ``corral runs``, ``pending()`` and
``corral budget`` walk indexes, and an older database gets its ``spent`` day totals."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from corral import InputError, load_team, open_workspace
from corral.workspace import NewTask, SqliteWorkspace, Workspace, _workspace
from tests.conftest import SUPPORT_DESK, TICKET, Cli
from tests.workspace.conftest import Clock

DAY = 86400.0
BY_RUN = ("runs", "usage", "events", "audit", "tasks", "tool_calls", "model_replies")
BY_THREAD = ("cp_checkpoints", "cp_blobs", "cp_writes")


def target(workspace: Workspace) -> str:
    """What ``open_workspace`` opens this workspace by (the URL with its password)."""
    return str(workspace.path if isinstance(workspace, SqliteWorkspace) else workspace.url)  # type: ignore[attr-defined]


def query(workspace: Workspace, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``?`` marks), on the workspace's own database, committed."""
    if isinstance(workspace, SqliteWorkspace):
        with sqlite3.connect(workspace.path) as conn:
            return list(conn.execute(sql, args).fetchall())
    with psycopg.connect(target(workspace), autocommit=True) as pg:
        cursor = pg.execute(sql.replace("?", "%s").encode(), args)
        return list(cursor.fetchall()) if cursor.description else []


def count(workspace: Workspace, sql: str, *args: Any) -> int:
    return int(query(workspace, sql, *args)[0][0])


def ran(workspace: Workspace, runs: int) -> list[str]:
    """Support-desk runs (real checkpoints and ledger rows) in ``workspace``'s database,
    each with an event, an audit row, a task and a tool call."""
    ids = []
    with load_team(SUPPORT_DESK).compile(db=target(workspace)) as app:
        for _ in range(runs):
            result = app.run(json.loads(TICKET.read_text()))
            assert result.status == "completed"
            ids.append(result.run_id)
    for run_id in ids:
        workspace.events.record(run_id, "note", "intake", {"n": 1})
        workspace.audit.record(run_id, "intake", "read", scope="s", target="t", verdict="allow")
        workspace.board.create([NewTask(f"{run_id}-t", run_id, "writer", 1, "write", {})])
        workspace.tool_calls.begin(
            f"{run_id}-c", slot=f"{run_id}-s", run_id=run_id, agent="intake", tool="t", args={}
        )
    return ids


def kept(workspace: Workspace, run_id: str) -> dict[str, int]:
    """Rows kept about a run, per table (its running totals too)."""
    found = {
        t: count(workspace, f"SELECT count(*) FROM {t} WHERE run_id = ?", run_id) for t in BY_RUN
    }
    for table in BY_THREAD:
        found[table] = count(workspace, f"SELECT count(*) FROM {table} WHERE thread_id = ?", run_id)
    found["totals"] = count(
        workspace,
        "SELECT count(*) FROM usage_totals WHERE key = ? OR key LIKE ?",
        run_id,
        f"{run_id}:%",
    )
    return found


def test_prune_forgets_old_ended_runs_everywhere_and_trims_the_rest(
    workspace: Workspace, clock: Clock
) -> None:
    clock.now = time.time()
    old_one, old_two, paused, young = ran(workspace, 4)
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(time.time() - 40 * DAY))
    for run_id in (old_one, old_two, paused):
        query(
            workspace,
            "UPDATE runs SET started_at = ?, updated_at = ? WHERE run_id = ?",
            long_ago,
            long_ago,
            run_id,
        )
    query(workspace, "UPDATE runs SET status = 'paused' WHERE run_id = ?", paused)
    day = workspace.ledger.day()
    report = workspace.ledger.report(day)
    before = {run_id: kept(workspace, run_id) for run_id in (paused, young)}
    assert all(n > 0 for n in before[young].values()), before  # every table had rows
    tasks = count(workspace, "SELECT count(*) FROM usage_totals WHERE scope = 'task'")

    done = workspace.prune(older_than=30 * DAY, keep=1)

    assert (done.runs, done.completed, done.vacuumed) == (2, 1, True)
    for run_id in (old_one, old_two):
        assert set(kept(workspace, run_id).values()) == {0}, kept(workspace, run_id)
        assert workspace.runs.get(run_id) is None
    assert kept(workspace, paused) == before[paused]  # waiting for a person: whole
    now = kept(workspace, young)  # completed and recent: trimmed to its newest checkpoint
    assert now["cp_checkpoints"] < before[young]["cp_checkpoints"]
    assert done.checkpoints == before[young]["cp_checkpoints"] - now["cp_checkpoints"]
    newest = (
        "SELECT max(n) FROM (SELECT count(*) AS n FROM cp_checkpoints WHERE thread_id = ? "
        "GROUP BY checkpoint_ns) AS per"
    )
    assert count(workspace, newest, young) == 1
    assert {k: v for k, v in now.items() if not k.startswith("cp_")} == {
        k: v for k, v in before[young].items() if not k.startswith("cp_")
    }
    assert 0 < count(workspace, "SELECT count(*) FROM usage_totals WHERE scope = 'task'") < tasks
    assert workspace.ledger.report(day) == report  # the day still adds up
    record = workspace.runs.get(young)
    assert record is not None
    assert record.usage["llm_calls"] == 4  # its account is whole

    workspace.delete_run(young)  # one run, as wholly
    assert set(kept(workspace, young).values()) == {0}
    assert kept(workspace, paused) == before[paused]
    assert workspace.ledger.report(day) == report
    assert [r.run_id for r in workspace.runs.list()] == [paused]


def test_prune_gives_space_back_or_marks_it_reusable(workspace: Workspace, clock: Clock) -> None:
    clock.now = time.time() + 40 * DAY
    ran(workspace, 3)
    done = workspace.prune(older_than=30 * DAY)
    assert done.runs == 3
    assert done.vacuumed
    if isinstance(workspace, SqliteWorkspace):  # VACUUM rewrites the file smaller
        assert done.freed > 0
        assert not done.reuses
        return
    assert done.reuses  # Postgres keeps the space for new rows: VACUUM ran on each table
    vacuumed = query(
        workspace,
        "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL "
        "AND relname IN ('runs', 'usage', 'events', 'cp_checkpoints', 'cp_blobs', 'cp_writes')",
    )
    assert len(vacuumed) == 6, vacuumed
    assert done.freed >= 0


def test_runs_prune_on_postgres_says_what_it_did(
    postgres_url: str, cli: Callable[..., Cli]
) -> None:
    workspace = open_workspace(postgres_url)
    try:
        ran(workspace, 1)
    finally:
        workspace.close()
    pruned = cli("runs", "prune", "--older-than", "30d", "--db", postgres_url)
    assert pruned.code == 0, pruned.stderr
    said = " ".join(pruned.stdout.split())
    assert "deleted 0 runs older than 30d; pruned 7 checkpoints from 1 completed run" in said
    assert "MB on disk; Postgres reuses the rest of the deleted rows' space" in said
    assert "freed -" not in said


def test_a_run_pruned_takes_its_definition_and_the_others_keep_theirs(
    workspace: Workspace, clock: Clock
) -> None:
    definition = {"agents": ["a", "b"], "flow": {"entry": "a"}}
    for run_id in ("r1", "r2"):
        workspace.runs.start(run_id, "t", None, {}, fingerprint="f1", definition=definition)
        workspace.runs.update(run_id, "completed")
    clock.now += 40 * DAY
    workspace.runs.start("r3", "t", None, {}, fingerprint="f1", definition=definition)
    workspace.runs.pin("r3", "f2", {"agents": ["a"]})
    assert workspace.prune(older_than=30 * DAY).runs == 2
    assert [r.run_id for r in workspace.runs.list()] == ["r3"]
    record = workspace.runs.get("r3")
    assert record is not None
    assert (record.fingerprint, record.definition) == ("f2", {"agents": ["a"]})
    workspace.delete_run("r3")
    assert workspace.runs.list() == []


def test_a_run_taken_over_while_a_prune_chooses_waits_then_finds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A resume in another process must not take over a run between the prune choosing it
    # (old and ended) and deleting it: the prune chooses and deletes under one lock.
    pruning = open_workspace(tmp_path / "w.db")
    (old,) = ran(pruning, 1)
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(time.time() - 40 * DAY))
    query(
        pruning,
        "UPDATE runs SET started_at = ?, updated_at = ? WHERE run_id = ?",
        long_ago,
        long_ago,
        old,
    )
    resuming = open_workspace(tmp_path / "w.db")
    took: list[str | None] = []
    resume = threading.Thread(target=lambda: took.append(resuming.runs.take_over(old)))
    choose = _workspace.ended_before

    def chosen(conn: Any, cutoff: str) -> list[str]:
        found = choose(conn, cutoff)
        resume.start()  # another process resumes the run now
        resume.join(timeout=0.5)
        assert resume.is_alive(), "the run was taken over between choosing and deleting"
        return found

    monkeypatch.setattr(_workspace, "ended_before", chosen)
    assert pruning.prune(older_than=30 * DAY).runs == 1
    resume.join(timeout=30)
    assert took == [None]  # it waited, then found no record to hold
    assert resuming.runs.get(old) is None
    assert set(kept(pruning, old).values()) == {0}  # forgotten whole
    pruning.close()
    resuming.close()


def test_delete_run_refuses_a_run_another_process_drives(
    workspace: Workspace, clock: Clock
) -> None:
    # checked in the delete's own transaction: a resume cannot start between a separate
    # check and the delete, and lose its run
    workspace.runs.start("live", "t", None, {})
    elsewhere = "another-host:42:a1b2c3"
    query(
        workspace,
        "UPDATE runs SET owner = ?, expires_at = ? WHERE run_id = ?",
        elsewhere,
        clock.now + 60,
        "live",
    )
    with pytest.raises(InputError, match=f"still running \\(held by {elsewhere}\\)"):
        workspace.delete_run("live")
    assert workspace.runs.get("live") is not None
    query(workspace, "UPDATE runs SET expires_at = ? WHERE run_id = ?", clock.now - 1, "live")
    workspace.delete_run("live")  # its lease ended: it crashed, and may go
    assert workspace.runs.get("live") is None
