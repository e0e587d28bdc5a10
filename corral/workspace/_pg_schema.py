"""The Postgres workspace's tables: the same columns as the SQLite file's, created
idempotently under an advisory lock (see ``PgPool.setup``)."""

from __future__ import annotations

from corral.errors import InputError
from corral.workspace._pg_db import Conn
from corral.workspace._pg_url import shown

VERSION = 1
"""The version of corral's tables a database has (the one row of ``corral_schema``; the
SQLite file's ``user_version``)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS corral_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, team TEXT, manifest TEXT, status TEXT, started_at TEXT,
    updated_at TEXT, pid BIGINT, input TEXT, output TEXT, errors TEXT, path TEXT,
    fingerprint TEXT, definition TEXT);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS owner TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS expires_at DOUBLE PRECISION;
DROP INDEX IF EXISTS runs_status;
CREATE INDEX IF NOT EXISTS runs_status_started ON runs (status, started_at);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, run_id TEXT, parent_id TEXT, assignee TEXT, depth INTEGER,
    status TEXT, instruction TEXT, payload TEXT, result TEXT, error TEXT,
    impact DOUBLE PRECISION, modifier DOUBLE PRECISION, blocked INTEGER,
    created_at DOUBLE PRECISION, claimed_at DOUBLE PRECISION, claimer TEXT,
    lease_until DOUBLE PRECISION, finished_at DOUBLE PRECISION, attempts INTEGER,
    rank DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS tasks_status_rank ON tasks (status, rank);
CREATE INDEX IF NOT EXISTS tasks_status_lease ON tasks (status, lease_until);
CREATE INDEX IF NOT EXISTS tasks_run ON tasks (run_id);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at);
CREATE TABLE IF NOT EXISTS guard_state (key TEXT PRIMARY KEY, value DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS usage (
    id BIGSERIAL PRIMARY KEY, run_id TEXT, task_key TEXT, agent TEXT, model TEXT, day TEXT,
    status TEXT, reserved BIGINT, reserved_cost DOUBLE PRECISION, input_tokens BIGINT,
    output_tokens BIGINT, cached_tokens BIGINT, cost_usd DOUBLE PRECISION,
    cost_known INTEGER, latency_ms DOUBLE PRECISION, content TEXT, at DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS usage_agent_day ON usage (agent, day);
CREATE INDEX IF NOT EXISTS usage_day ON usage (day);
CREATE INDEX IF NOT EXISTS usage_task ON usage (task_key);
CREATE INDEX IF NOT EXISTS usage_run ON usage (run_id);
CREATE TABLE IF NOT EXISTS usage_totals (
    scope TEXT, key TEXT, day TEXT, tokens BIGINT, cost DOUBLE PRECISION, calls BIGINT,
    unknown BIGINT, PRIMARY KEY (scope, key, day));
CREATE TABLE IF NOT EXISTS task_grants (
    task_key TEXT PRIMARY KEY, parent TEXT, tokens BIGINT, settled INTEGER);
CREATE TABLE IF NOT EXISTS budget_alerts (
    agent TEXT, day TEXT, layer TEXT, PRIMARY KEY (agent, day, layer));
CREATE TABLE IF NOT EXISTS budget_limits (
    agent TEXT PRIMARY KEY, daily_tokens BIGINT, daily_cost_usd DOUBLE PRECISION,
    alert_threshold DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY, run_id TEXT, at TEXT, kind TEXT, agent TEXT, data TEXT);
CREATE INDEX IF NOT EXISTS events_run_kind ON events (run_id, kind);
CREATE TABLE IF NOT EXISTS audit (
    id BIGSERIAL PRIMARY KEY, run_id TEXT, at DOUBLE PRECISION, agent TEXT, action TEXT,
    scope TEXT, target TEXT, verdict TEXT, reason TEXT);
CREATE INDEX IF NOT EXISTS audit_run ON audit (run_id);
CREATE TABLE IF NOT EXISTS tool_calls (
    key TEXT PRIMARY KEY, run_id TEXT, agent TEXT, tool TEXT, args TEXT, result TEXT,
    at DOUBLE PRECISION, slot TEXT, state TEXT);
CREATE INDEX IF NOT EXISTS tool_calls_slot ON tool_calls (slot);
CREATE INDEX IF NOT EXISTS tool_calls_run ON tool_calls (run_id);
CREATE TABLE IF NOT EXISTS model_replies (
    key TEXT PRIMARY KEY, run_id TEXT, usage_id BIGINT, type TEXT, reply BYTEA,
    at DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS model_replies_run ON model_replies (run_id);
CREATE TABLE IF NOT EXISTS breakers (
    agent TEXT PRIMARY KEY, state TEXT, failures INTEGER, first_failure DOUBLE PRECISION,
    open_until DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS cp_checkpoints (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    parent_id TEXT, run_id TEXT, type TEXT NOT NULL, checkpoint BYTEA NOT NULL,
    meta_type TEXT NOT NULL, metadata BYTEA NOT NULL,
    channels TEXT[] NOT NULL, versions TEXT[] NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id));
CREATE INDEX IF NOT EXISTS cp_checkpoints_run ON cp_checkpoints (run_id);
CREATE TABLE IF NOT EXISTS cp_blobs (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, channel TEXT NOT NULL,
    version TEXT NOT NULL, type TEXT NOT NULL, blob BYTEA,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version));
CREATE TABLE IF NOT EXISTS cp_writes (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL, idx INTEGER NOT NULL, channel TEXT NOT NULL,
    type TEXT NOT NULL, blob BYTEA, task_path TEXT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx));
"""

SPENT = (
    "INSERT INTO usage_totals (scope, key, day, tokens, cost, calls, unknown) SELECT 'spent', "
    "agent, day, SUM(input_tokens + output_tokens), SUM(cost_usd), count(*), SUM(1 - cost_known) "
    "FROM usage WHERE status = 'settled' GROUP BY agent, day ON CONFLICT DO NOTHING"
)
"""A database made before the ``spent`` day totals gets them from its settled calls."""


def version_of(conn: Conn) -> int | None:
    """The version of corral's tables in the database (None: none recorded yet)."""
    table = conn.execute("SELECT to_regclass('corral_schema')").fetchone()
    if table is None or table[0] is None:
        return None
    found = conn.execute("SELECT max(version) FROM corral_schema").fetchone()
    return None if found is None or found[0] is None else int(found[0])


def refuse_newer(conn: Conn, url: str) -> None:
    """Refuse the database at ``url`` if a newer corral wrote its tables (checked before
    anything is changed: they are never downgraded)."""
    version = version_of(conn)
    if version is not None and version > VERSION:
        raise InputError(
            f"the workspace {shown(url)} was written by a newer corral (tables version "
            f"{version}; this corral knows {VERSION}); upgrade corral to use it",
            field="db",
        )


def upgrade(conn: Conn) -> None:
    """Bring a database made by an older version up to date (in the schema transaction):
    the ``spent`` day totals, filled from its settled calls; then record the version."""
    _spent(conn)
    version = version_of(conn)
    if version is None:
        conn.execute("INSERT INTO corral_schema (version) VALUES (%s)", (VERSION,))
    elif version < VERSION:
        conn.execute("UPDATE corral_schema SET version = %s", (VERSION,))


def _spent(conn: Conn) -> None:
    """The ``spent`` day totals of a database made before them."""
    found = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'usage_totals' AND column_name = 'unknown'"
    ).fetchone()
    if found is None:
        conn.execute("ALTER TABLE usage_totals ADD COLUMN unknown BIGINT")
        conn.execute(SPENT)
