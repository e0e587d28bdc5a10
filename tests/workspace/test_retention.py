"""SQLite's own: scans walk indexes; older workspace files upgrade to the ``spent`` day
totals on open; a team definition is kept once and pruned with its last run. (Prune's
behaviour on every backend: test_prune.py.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from corral import load_team, open_workspace
from tests.conftest import SUPPORT_DESK, TICKET

DAY = 86400.0


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
    rows = (  # the statements ``SqliteRuns.list`` runs
        "SELECT run_id, team, manifest, status, started_at, updated_at, pid, input, output, "
        "errors, path, fingerprint, owner, expires_at, COALESCE(runs.definition, (SELECT "
        "d.definition FROM definitions d WHERE d.fingerprint = runs.fingerprint)) AS "
        "definition FROM runs"
    )
    for sql, args in (
        (f"{rows} ORDER BY started_at DESC LIMIT ?", (50,)),
        (f"{rows} WHERE status = ? ORDER BY started_at DESC LIMIT ?", ("paused", 50)),
    ):
        found = plan(db, sql, *args)
        assert "USING INDEX idx_runs_" in found, found
        assert "TEMP B-TREE" not in found, found  # no sort of every row
    spent = plan(db, "SELECT * FROM usage_totals WHERE scope = 'spent' AND day = ?", "x")
    assert spent.startswith("SEARCH usage_totals USING PRIMARY KEY (scope=?)"), spent


def test_an_older_workspace_gets_spent_totals_from_its_calls(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    ran(db, 2)
    workspace = open_workspace(db)
    day = workspace.ledger.day()
    report = workspace.ledger.report(day)
    workspace.close()
    assert report[-1]["calls"] == 8  # four calls a run
    with sqlite3.connect(db) as conn:  # the file as the previous version left it
        conn.execute(
            'CREATE TABLE old ("scope" TEXT, "key" TEXT, "day" TEXT, "tokens" INTEGER, '
            '"cost" FLOAT, "calls" INTEGER, PRIMARY KEY ("scope", "key", "day"))'
        )
        conn.execute(
            "INSERT INTO old SELECT scope, key, day, tokens, cost, calls FROM usage_totals "
            "WHERE scope != 'spent'"
        )
        conn.execute("DROP TABLE usage_totals")
        conn.execute("ALTER TABLE old RENAME TO usage_totals")
        conn.execute("CREATE INDEX idx_usage_day ON usage (day)")
        totals = conn.execute("SELECT * FROM usage_totals ORDER BY 1, 2, 3").fetchall()
    upgraded = open_workspace(db)
    assert upgraded.ledger.report(day) == report
    upgraded.close()
    assert count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'idx_usage_day'") == 0
    made = "SELECT count(*) FROM sqlite_master WHERE name = 'usage_totals' AND sql LIKE ?"
    assert count(db, made, "%WITHOUT ROWID%") == 1
    with sqlite3.connect(db) as conn:  # every running total came across as it was
        kept = "SELECT scope, key, day, tokens, cost, calls FROM usage_totals"
        assert conn.execute(f"{kept} WHERE scope != 'spent' ORDER BY 1, 2, 3").fetchall() == totals
    again = open_workspace(db)  # opening it again changes nothing
    assert again.ledger.report(day) == report
    again.close()


def test_a_team_definition_is_kept_once_and_pruned_with_its_last_run(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    now = [1_700_000_000.0]
    workspace = open_workspace(db, clock=lambda: now[0])
    definition = {"agents": ["a", "b"], "flow": {"entry": "a"}}
    for run_id in ("r1", "r2", "r3"):
        workspace.runs.start(run_id, "t", None, {}, fingerprint="f1", definition=definition)
        workspace.runs.update(run_id, "completed")
    with sqlite3.connect(db) as conn:  # a run recorded before: its definition in its row
        conn.execute(
            "INSERT INTO runs (run_id, team, status, started_at, updated_at, fingerprint, "
            "definition, input, output, errors, path) VALUES ('old', 't', 'completed', "
            "'2020-01-01T00:00:00.000+00:00', '2020-01-01T00:00:00.000+00:00', 'f0', "
            "'{\"v\": 0}', '{}', 'null', '[]', '[]')"
        )
    assert count(db, "SELECT count(*) FROM definitions") == 1
    assert count(db, "SELECT count(*) FROM runs WHERE definition IS NOT NULL") == 1
    assert {r.run_id: r.definition for r in workspace.runs.list()} == {
        "r1": definition,
        "r2": definition,
        "r3": definition,
        "old": {"v": 0},
    }
    workspace.runs.pin("r3", "f2", {"agents": ["a"]})
    record = workspace.runs.get("r3")
    assert record is not None
    assert (record.fingerprint, record.definition) == ("f2", {"agents": ["a"]})
    assert count(db, "SELECT count(*) FROM definitions") == 2

    now[0] += 40 * DAY
    workspace.runs.start("r4", "t", None, {}, fingerprint="f1", definition=definition)
    assert workspace.prune(older_than=30 * DAY).runs == 4  # r1, r2, r3 and old
    with sqlite3.connect(db) as conn:  # only r4's, f1, is left
        assert conn.execute("SELECT fingerprint FROM definitions").fetchall() == [("f1",)]
    record = workspace.runs.get("r4")
    assert record is not None
    assert record.definition == definition
    workspace.close()
