"""On Postgres, the scans behind ``corral runs``, ``App.pending()`` and ``corral budget``
walk indexes in order (no sort of every row, no sequential scan), as on SQLite; and a
database made before the ``spent`` day totals gets them from its calls on open."""

from __future__ import annotations

import json

import psycopg

from corral import load_team, open_workspace
from tests.conftest import SUPPORT_DESK, TICKET

ROWS = (
    "SELECT run_id, team, manifest, status, started_at, updated_at, pid, input, output, "
    "errors, path, fingerprint, owner, expires_at, definition AS definition FROM runs "
)
"""The statements ``PgRuns.list`` and ``PgLedger.report`` run."""
SCANS = {  # name: (statement, its arguments, the index it walks)
    "corral runs": (ROWS + "ORDER BY started_at DESC LIMIT %s", (50,), "runs_started"),
    "pending()": (
        ROWS + "WHERE status = %s ORDER BY started_at DESC LIMIT %s",
        ("paused", 10**6),
        "runs_status_started",
    ),
    "corral budget": (
        "SELECT key, tokens, cost, COALESCE(unknown, 0), calls FROM usage_totals "
        "WHERE scope = 'spent' AND day = %s ORDER BY key",
        ("2026-01-07",),
        "usage_totals_pkey",
    ),
}


def test_the_scans_walk_indexes(postgres_url: str) -> None:
    open_workspace(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(  # 20,000 runs over 20,000 minutes, one in 500 paused
            "INSERT INTO runs (run_id, team, status, started_at, updated_at, input, output, "
            "errors, path) SELECT 'r' || i, 't', CASE WHEN i % 500 = 0 THEN 'paused' ELSE "
            "'completed' END, to_char(timestamp '2026-01-01' + i * interval '1 minute', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.MS+00:00'), '', '{}', 'null', '[]', '[]' "
            "FROM generate_series(1, 20000) AS i"
        )
        conn.execute("UPDATE runs SET updated_at = started_at")
        conn.execute(  # each run's task and run totals, and 20 agents' spent days
            "INSERT INTO usage_totals SELECT s, 'r' || i, '', 10, 0, 1, 0 FROM "
            "generate_series(1, 20000) AS i, unnest(ARRAY['task', 'run']) AS s"
        )
        conn.execute(
            "INSERT INTO usage_totals SELECT 'spent', 'a' || a, '2026-01-' || lpad(d::text, 2, "
            "'0'), 10, 0, 1, 0 FROM generate_series(1, 20) AS a, generate_series(1, 28) AS d"
        )
        conn.execute("ANALYZE")
        for name, (sql, args, index) in SCANS.items():
            plan = "\n".join(r[0] for r in conn.execute(("EXPLAIN " + sql).encode(), args))
            assert f"Index Scan Backward using {index} on" in plan or (
                f"Index Scan using {index} on" in plan
            ), (name, plan)
            assert "Seq Scan" not in plan, (name, plan)
            if name != "corral runs":  # only the rows asked for are read
                assert "Index Cond" in plan, (name, plan)
                assert "Filter" not in plan or name == "corral budget", (name, plan)
            if name != "corral budget":  # the index gives the order: no sort of every run
                assert "Sort" not in plan, (name, plan)


def test_an_older_database_gets_spent_totals_from_its_calls(postgres_url: str) -> None:
    with load_team(SUPPORT_DESK).compile(db=postgres_url) as app:
        for _ in range(2):
            assert app.run(json.loads(TICKET.read_text())).status == "completed"
    workspace = open_workspace(postgres_url)
    day = workspace.ledger.day()
    report = workspace.ledger.report(day)
    workspace.close()
    assert report[-1]["calls"] == 8  # four calls a run
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # as the version before
        conn.execute("DELETE FROM usage_totals WHERE scope = 'spent'")
        conn.execute("ALTER TABLE usage_totals DROP COLUMN unknown")
    for _ in range(2):  # upgraded once; opening it again changes nothing
        upgraded = open_workspace(postgres_url)
        assert upgraded.ledger.report(day) == report
        upgraded.close()
