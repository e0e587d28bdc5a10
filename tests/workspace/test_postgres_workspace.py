"""The Postgres workspace itself: many processes opening a fresh database at once set it
up exactly once, LangGraph's store lives in the same database, and URLs are told from
file paths (a URL that came through ``Path`` is read back)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import psycopg
import pytest

from corral import open_workspace
from corral.errors import InputError
from corral.workspace import postgres_url, workspace_label


def _open_and_use(url: str, worker: int) -> str:
    workspace = open_workspace(url)
    workspace.runs.start(f"r{worker}", "team", None, {})
    workspace.store.put(("ns",), f"k{worker}", {"by": worker})
    workspace.close()
    return f"r{worker}"


def test_many_processes_open_a_fresh_database_at_once(postgres_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        started = pool.starmap(_open_and_use, [(postgres_url, w) for w in range(6)])
    workspace = open_workspace(postgres_url)
    assert sorted(r.run_id for r in workspace.runs.list()) == sorted(started)
    assert sorted(item.key for item in workspace.store.search(("ns",))) == [
        f"k{w}" for w in range(6)
    ]
    workspace.close()
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT count(*) FROM store_migrations").fetchone()
        assert row is not None
        migrations = row[0]
        row = conn.execute("SELECT count(DISTINCT v) FROM store_migrations").fetchone()
        assert row is not None
        assert row[0] == migrations  # each migration ran once
        versions = conn.execute("SELECT version FROM corral_schema").fetchall()
    assert versions == [(1,)]  # one row, written once


def test_reopening_writes_nothing_and_keeps_everything(postgres_url: str) -> None:
    first = open_workspace(postgres_url)
    first.events.record("r", "failure", None, {"message": "m"})
    first.close()
    again = open_workspace(postgres_url)
    assert [e["message"] for e in again.events.list("r")] == ["m"]
    again.close()


def test_urls_are_told_from_paths() -> None:
    url = "postgresql://corral:secret@db.internal:5432/corral"
    assert postgres_url(url) == url
    assert postgres_url(Path(url)) == url  # Path folded the '//'
    assert postgres_url("postgres://h/db") == "postgres://h/db"
    assert postgres_url(".corral/corral.db") is None
    assert postgres_url("postgresql.db") is None
    assert workspace_label(url) == "postgresql://corral:***@db.internal:5432/corral"
    assert workspace_label("w.db") == "w.db"
    query = "postgresql://h/db?sslmode=require&Password=secret&user=corral"
    assert workspace_label(query) == "postgresql://h/db?sslmode=require&Password=***&user=corral"


def _drop_connections(url: str) -> int:
    """Terminate every other session on the database (a failover, a restarted proxy),
    waiting until each has ended (so its socket is closed)."""
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_dropped_connections_are_replaced(postgres_url: str) -> None:
    workspace = open_workspace(postgres_url)
    try:
        workspace.runs.start("before", "team", None, {})
        workspace.store.put(("ns",), "k", {"v": 1})
        assert _drop_connections(postgres_url) >= 2  # the pool's and the store's
        workspace.runs.start("after", "team", None, {})  # not the server's shutdown error
        workspace.store.put(("ns",), "k", {"v": 2})
        assert sorted(r.run_id for r in workspace.runs.list()) == ["after", "before"]
        item = workspace.store.get(("ns",), "k")
        assert item is not None
        assert item.value == {"v": 2}
    finally:
        workspace.close()


def _index(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() != (None,)


def test_a_database_from_a_newer_corral_is_refused_not_downgraded(postgres_url: str) -> None:
    open_workspace(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("UPDATE corral_schema SET version = 99")
        conn.execute("DROP INDEX runs_started")  # as a newer layout might have
    with pytest.raises(InputError, match="newer corral") as refused:
        open_workspace(postgres_url)
    assert "tables version 99; this corral knows 1" in str(refused.value)
    assert not _index(postgres_url, "runs_started")  # nothing was changed
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version FROM corral_schema").fetchall() == [(99,)]


def test_a_database_from_before_the_version_gets_it(postgres_url: str) -> None:
    open_workspace(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("DROP TABLE corral_schema")
    workspace = open_workspace(postgres_url)
    workspace.runs.start("r", "team", None, {})
    workspace.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version FROM corral_schema").fetchall() == [(1,)]
