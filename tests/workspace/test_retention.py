"""Scans walk indexes; prune by age forgets whole runs and gives the space back; older
workspaces upgrade to the ``spent`` day totals on open."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from corral import load_team, open_workspace
from tests.conftest import SUPPORT_DESK, TICKET

DAY = 86400.0
RUN_TABLES = ("runs", "usage", "events", "audit")


def count(db: Path, sql: str, *args: Any) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def plan(db: Path, sql: str, *args: Any) -> str:
    with sqlite3.connect(db) as conn:
        return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))


def ran(db: Path, runs: int) -> list[str]:
    """Support-desk runs (real checkpoints and ledger rows), each with an event and an
    audit row."""
    ids = []
    with load_team(SUPPORT_DESK).compile(db=db) as app:
        for _ in range(runs):
            result = app.run(json.loads(TICKET.read_text()))
            assert result.status == "completed"
            ids.append(result.run_id)
    workspace = open_workspace(db)
    for run_id in ids:
        workspace.events.record(run_id, "note", "intake", {"n": 1})
        workspace.audit.record(run_id, "intake", "read", scope="s", target="t", verdict="allow")
    workspace.close()
    return ids


def test_listing_runs_walks_an_index_in_order(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    open_workspace(db).close()
    for sql, args in (
        ("SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (50,)),
        ("SELECT * FROM runs WHERE status = ? ORDER BY started_at DESC LIMIT ?", ("paused", 50)),
    ):
        found = plan(db, sql, *args)
        assert "USING INDEX idx_runs_" in found, found
        assert "TEMP B-TREE" not in found, found  # no sort of every row
    spent = plan(db, "SELECT * FROM usage_totals WHERE scope = 'spent' AND day = ?", "x")
    assert "USING INDEX" in spent, spent


def test_prune_forgets_old_ended_runs_and_gives_the_space_back(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    ids = ran(db, 8)
    old, paused, young = ids[:6], ids[6], ids[7]
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(time.time() - 40 * DAY))
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "UPDATE runs SET started_at = ?, updated_at = ? WHERE run_id = ?",
            [(long_ago, long_ago, r) for r in [*old, paused]],
        )
        conn.execute("UPDATE runs SET status = 'paused' WHERE run_id = ?", (paused,))
    workspace = open_workspace(db)
    report = workspace.ledger.report(workspace.ledger.day())
    keys = count(db, "SELECT count(*) FROM usage_totals WHERE scope = 'task'")
    with workspace.pool.connection() as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size

    done = workspace.prune(older_than=30 * DAY)

    assert done.runs == len(old)
    assert done.freed > 0
    assert db.stat().st_size < size
    for run_id in old:
        for table in RUN_TABLES:
            assert count(db, f"SELECT count(*) FROM {table} WHERE run_id = ?", run_id) == 0
        assert count(db, "SELECT count(*) FROM cp_checkpoints WHERE thread_id = ?", run_id) == 0
        assert count(db, "SELECT count(*) FROM cp_blobs WHERE thread_id = ?", run_id) == 0
        assert count(db, "SELECT count(*) FROM usage_totals WHERE key = ?", run_id) == 0
        assert count(db, "SELECT count(*) FROM usage_totals WHERE key LIKE ?", f"{run_id}:%") == 0
    for run_id in (paused, young):  # waiting for a person, or recent: kept whole
        for table in RUN_TABLES:
            assert count(db, f"SELECT count(*) FROM {table} WHERE run_id = ?", run_id) > 0
        assert count(db, "SELECT count(*) FROM cp_checkpoints WHERE thread_id = ?", run_id) > 0
    assert 0 < count(db, "SELECT count(*) FROM usage_totals WHERE scope = 'task'") < keys
    assert workspace.ledger.report(workspace.ledger.day()) == report  # the day still adds up
    assert workspace.runs.get(young) is not None
    workspace.close()


def test_an_older_workspace_gets_spent_totals_from_its_calls(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    ran(db, 2)
    workspace = open_workspace(db)
    day = workspace.ledger.day()
    report = workspace.ledger.report(day)
    workspace.close()
    assert report[-1]["calls"] == 8  # four calls a run
    with sqlite3.connect(db) as conn:  # the file as the previous version left it
        conn.execute("DELETE FROM usage_totals WHERE scope = 'spent'")
        conn.execute("ALTER TABLE usage_totals DROP COLUMN unknown")
        conn.execute("CREATE INDEX idx_usage_day ON usage (day)")
    upgraded = open_workspace(db)
    assert upgraded.ledger.report(day) == report
    upgraded.close()
    assert count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'idx_usage_day'") == 0
    again = open_workspace(db)  # opening it again changes nothing
    assert again.ledger.report(day) == report
    again.close()
