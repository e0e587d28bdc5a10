"""Database time of the workspace's scans with 50,000 runs: ``corral runs``, the
registry read behind ``App.pending()``, and ``corral budget``.

A workspace is filled fast (executemany) with ``--runs`` runs of four calls each, all
on one day (the worst case for the day's report), ``--paused`` of them waiting for a
person. Each scan is timed as corral runs it now (the workspace's own methods, JSON
decoding included) and as the statements before this change ran it (``? IS NULL OR
status = ?`` with no usable index; the day's report summed from every call through an
index on ``day``), interleaved (old, new, old, new ...) for ``--rounds`` rounds. "SQL"
is the database's part: the statements alone, without building the records.

    python benchmarks/scans.py [--runs 50000] [--paused 100] [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral import open_workspace
from corral.workspace import SqliteWorkspace

AGENTS = ("intake", "triage", "billing", "writer")
DAY = "2026-11-21"
DEFINITION = json.dumps({"agents": {a: {"role": a, "instructions": "x" * 300} for a in AGENTS}})


ROWS = (
    "SELECT run_id, team, manifest, status, started_at, updated_at, pid, input, output, "
    "errors, path, fingerprint, owner, expires_at, COALESCE(runs.definition, (SELECT "
    "d.definition FROM definitions d WHERE d.fingerprint = runs.fingerprint)) AS "
    "definition FROM runs"
)


def fill(db: Path, runs: int, paused: int) -> None:
    """``runs`` runs with four settled calls each, their totals, an event and an audit row."""
    open_workspace(db).close()  # corral's own tables and indexes
    rng = random.Random(7)
    start = time.mktime(time.strptime(DAY, "%Y-%m-%d"))
    waiting = set(rng.sample(range(runs), paused))
    run_rows, calls, totals, events = [], [], [], []
    for i in range(runs):
        run_id = f"run-{i:06d}"
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + i * 86400 / runs))
        status = "paused" if i in waiting else ("failed" if i % 17 == 0 else "completed")
        began, ended = at + ".000+00:00", at + ".500+00:00"
        output, path = '{"ok": true}', json.dumps(list(AGENTS))
        run_rows.append(
            (
                run_id,
                "bench",
                None,
                status,
                began,
                ended,
                1,
                "{}",
                output,
                "[]",
                path,
                "f",
                DEFINITION,
            )
        )
        for step, agent in enumerate(AGENTS):
            key = f"{run_id}:{agent}@{step}"
            calls.append((run_id, key, agent, "scripted", DAY, 300, 80, 0.0012, 1))
            totals.append(("task", key, "", 380, 0.0012, 1, 0))
        totals.append(("run", run_id, "", 1520, 0.0048, 4, 0))
        events.append((run_id, at, "note", "intake", "{}"))
    for agent in AGENTS:
        totals.append(("agent", agent, DAY, 380 * runs, 0.0012 * runs, runs, 0))
        totals.append(("spent", agent, DAY, 380 * runs, 0.0012 * runs, runs, 0))
    totals.append(("team", "__team__", DAY, 1520 * runs, 0.0048 * runs, 4 * runs, 0))
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO runs (run_id, team, manifest, status, started_at, updated_at, pid, "
            "input, output, errors, path, fingerprint, definition) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run_rows,
        )
        conn.executemany(
            "INSERT INTO usage (run_id, task_key, agent, model, day, status, reserved, "
            "reserved_cost, input_tokens, output_tokens, cached_tokens, cost_usd, cost_known, "
            "latency_ms, at) VALUES (?, ?, ?, ?, ?, 'settled', 0, 0, ?, ?, 0, ?, ?, 1.0, 0)",
            calls,
        )
        conn.executemany("INSERT INTO usage_totals VALUES (?, ?, ?, ?, ?, ?, ?)", totals)
        conn.execute("INSERT INTO definitions VALUES ('f', ?)", (DEFINITION,))
        conn.executemany(
            "INSERT INTO events (run_id, at, kind, agent, data) VALUES (?, ?, ?, ?, ?)", events
        )
        # What the report of the previous version read through (this version drops it).
        conn.execute("CREATE INDEX old_usage_day ON usage (day)")


def old_list(ws: SqliteWorkspace, status: str | None, limit: int) -> list[Any]:
    """The registry listing as it ran before: the disjunction defeats every index."""
    with ws.pool.read() as conn:
        rows = conn.execute(
            "SELECT *, (SELECT definition FROM definitions WHERE fingerprint = 'f') "
            "FROM runs NOT INDEXED WHERE (? IS NULL OR status = ?) "
            "ORDER BY started_at DESC LIMIT ?",
            (status, status, limit),
        ).fetchall()
        usage_sql(conn, [r[0] for r in rows])
    return rows


def new_sql(ws: SqliteWorkspace, status: str | None, limit: int) -> list[Any]:
    """The statements of the listing as it runs now, without building the records."""
    with ws.pool.read() as conn:
        if status is None:
            rows = conn.execute(f"{ROWS} ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
        else:
            rows = conn.execute(
                f"{ROWS} WHERE status = ? ORDER BY started_at DESC LIMIT ?", (status, limit)
            ).fetchall()
        usage_sql(conn, [r[0] for r in rows])
    return rows


def usage_sql(conn: sqlite3.Connection, ids: list[str]) -> None:
    """The ledger read behind each listed run's account."""
    for begin in range(0, len(ids), 500):
        some = ids[begin : begin + 500]
        conn.execute(
            "SELECT run_id, SUM(input_tokens), SUM(output_tokens), count(*), "
            f"SUM(cost_usd), SUM(1 - cost_known) FROM usage WHERE run_id IN "
            f"({', '.join('?' * len(some))}) AND status = 'settled' GROUP BY run_id",
            some,
        ).fetchall()


def spent_sql(ws: SqliteWorkspace, day: str) -> list[Any]:
    """The statements of the day's report as it runs now."""
    with ws.pool.read() as conn:
        rows = conn.execute(
            "SELECT key, tokens, cost, COALESCE(unknown, 0), calls FROM usage_totals "
            "WHERE scope = 'spent' AND day = ? ORDER BY key",
            (day,),
        ).fetchall()
        conn.execute("SELECT * FROM budget_limits").fetchall()
    return rows


def old_report(ws: SqliteWorkspace, day: str) -> list[Any]:
    """The day's report as it ran before: every settled call of the day summed."""
    with ws.pool.read() as conn:
        return conn.execute(
            "SELECT agent, COALESCE(SUM(input_tokens + output_tokens), 0), "
            "COALESCE(SUM(cost_usd), 0), SUM(1 - cost_known), count(*) FROM usage "
            "INDEXED BY old_usage_day WHERE day = ? AND status = 'settled' GROUP BY agent "
            "ORDER BY agent",
            (day,),
        ).fetchall()


def measure(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Milliseconds of each contender per round, run in turn within every round."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():  # warm the page cache and the statement cache
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            began = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - began) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--paused", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scans.db"
        began = time.perf_counter()
        fill(db, args.runs, args.paused)
        print(
            f"{args.runs} runs ({args.paused} paused), {4 * args.runs} calls, filled in "
            f"{time.perf_counter() - began:.1f} s; load average "
            + " ".join(f"{x:.2f}" for x in os.getloadavg()),
            flush=True,
        )
        ws = open_workspace(db)
        everyone = 1_000_000
        scans: dict[str, dict[str, Callable[[], object]]] = {
            "corral runs (50 newest)": {
                "old": lambda: old_list(ws, None, 50),
                "sql": lambda: new_sql(ws, None, 50),
                "new": lambda: ws.runs.list(limit=50),
            },
            "pending() registry read": {
                "old": lambda: old_list(ws, "paused", everyone),
                "sql": lambda: new_sql(ws, "paused", everyone),
                "new": lambda: ws.runs.list(limit=everyone, status="paused"),
            },
            "corral budget (report)": {
                "old": lambda: old_report(ws, DAY),
                "sql": lambda: spent_sql(ws, DAY),
                "new": lambda: ws.ledger.report(DAY),
            },
        }
        assert len(ws.runs.list(limit=everyone, status="paused")) == args.paused
        assert ws.ledger.report(DAY)[-1]["calls"] == 4 * args.runs
        results = []
        for name, fns in scans.items():
            t = measure(fns, args.rounds)
            ratios = [o / n for o, n in zip(t["old"], t["new"], strict=True)]
            row = {
                "scan": name,
                "sql_min_ms": min(t["sql"]),
                "sql_median_ms": statistics.median(t["sql"]),
                "new_min_ms": min(t["new"]),
                "new_median_ms": statistics.median(t["new"]),
                "old_min_ms": min(t["old"]),
                "old_median_ms": statistics.median(t["old"]),
                "speedup_median": statistics.median(ratios),
            }
            results.append(row)
            print(
                f"{name:24} SQL {row['sql_min_ms']:6.2f} / {row['sql_median_ms']:6.2f} ms   "
                f"with records {row['new_min_ms']:6.2f} / {row['new_median_ms']:6.2f} ms   "
                f"before {row['old_min_ms']:6.1f} / {row['old_median_ms']:6.1f} ms (min / "
                f"median)   {row['speedup_median']:5.0f}x faster",
                flush=True,
            )
        ws.close()
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
