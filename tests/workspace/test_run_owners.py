"""Who holds a run, across machines: an owner string (host:pid:token) with a lease.

Run against every backend through the ``workspace`` fixture. Another process (on this
host or another) is played by the same registry with its ``owner`` set to that
process's owner string: the rows it writes are exactly the ones that process writes.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from corral import Workspace, open_workspace
from tests.workspace.conftest import Clock

ELSEWHERE = "machine-a.example:4242:0badc0ffee00"
MACHINE_B = "machine-b.example:4242:feedfacefeed"


@pytest.fixture
def sleeper() -> Iterator[int]:
    """The pid of a live process on this host (stopped after the test)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    """The pid of a process on this host that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_owner_and_lease_are_recorded(workspace: Workspace, clock: Clock) -> None:
    runs = workspace.runs
    me = runs.owner
    host, pid, token = me.rsplit(":", 2)
    assert host == socket.gethostname()
    assert int(pid) > 0
    assert len(token) >= 8
    runs.start("r1", "team", None, {})
    record = runs.get("r1")
    assert record is not None
    assert record.owner == me
    assert record.expires_at == clock.now + runs.lease
    clock.now += 5
    runs.update("r1", "halted")
    record = runs.get("r1")
    assert record is not None
    assert record.expires_at == clock.now + runs.lease


def test_a_taken_run_id_is_told_not_overwritten(workspace: Workspace, clock: Clock) -> None:
    runs = workspace.runs
    assert runs.start("r1", "team", None, {"n": 1}) is None  # recorded
    runs.update("r1", "completed")
    runs.owner = ELSEWHERE
    assert runs.start("r1", "other", None, {"n": 2}) == "completed"  # taken: its status
    record = runs.get("r1")
    assert record is not None
    assert (record.team, record.input, record.status) == ("team", {"n": 1}, "completed")
    assert record.owner != ELSEWHERE


def test_a_live_holder_on_another_host_is_not_taken_before_its_lease_ends(
    workspace: Workspace, clock: Clock
) -> None:
    runs = workspace.runs
    runs.owner = ELSEWHERE
    runs.start("r1", "team", None, {})  # machine A drives r1
    runs.owner = MACHINE_B  # `corral resume r1` on machine B
    clock.now += runs.lease - 1
    assert runs.take_over("r1") == ELSEWHERE  # A's pid means nothing on B: refused
    record = runs.get("r1")
    assert record is not None
    assert record.owner == ELSEWHERE
    clock.now += 2  # A's lease ended unrenewed: A is presumed dead
    assert runs.take_over("r1") is None
    record = runs.get("r1")
    assert record is not None
    assert record.status == "running"
    assert record.owner == MACHINE_B
    assert record.expires_at == clock.now + runs.lease
    runs.owner = ELSEWHERE
    assert runs.take_over("r1") == MACHINE_B  # and A, back, cannot take it back
    assert not runs.renew("r1")  # nor extend a lease that is no longer its own


def test_renewing_keeps_the_run_held(workspace: Workspace, clock: Clock) -> None:
    runs = workspace.runs
    me = runs.owner
    runs.owner = ELSEWHERE
    runs.start("r1", "team", None, {})
    for _ in range(3):  # machine A renews each time two thirds of the lease have passed
        clock.now += runs.lease * 2 / 3
        assert runs.renew("r1")
    runs.owner = me
    assert runs.take_over("r1") == ELSEWHERE
    assert not runs.renew("r1")  # not mine to renew


def test_on_this_host_a_dead_holder_is_taken_at_once_a_live_one_is_not(
    workspace: Workspace, sleeper: int, clock: Clock
) -> None:
    runs = workspace.runs
    me = runs.owner
    here = socket.gethostname()
    runs.owner = f"{here}:{sleeper}:aaaaaaaaaaaa"
    runs.start("live", "team", None, {})
    runs.owner = f"{here}:{dead_pid()}:bbbbbbbbbbbb"
    runs.start("dead", "team", None, {})
    runs.owner = me
    assert runs.take_over("live") == f"{here}:{sleeper}:aaaaaaaaaaaa"
    clock.now += runs.lease + 1  # a step longer than a lease: its live process keeps it
    assert runs.take_over("live") == f"{here}:{sleeper}:aaaaaaaaaaaa"
    clock.now -= runs.lease + 1
    assert runs.take_over("dead") is None  # its lease has not ended, but it is gone
    record = runs.get("dead")
    assert record is not None
    assert record.owner == me


def test_this_process_and_finished_runs_are_taken(workspace: Workspace, clock: Clock) -> None:
    runs = workspace.runs
    runs.start("mine", "team", None, {})
    assert runs.take_over("mine") is None  # this process holds it
    runs.owner = ELSEWHERE
    runs.start("done", "team", None, {})
    runs.update("done", "halted")
    runs.owner = "someone-else:1:cccccccccccc"
    assert runs.take_over("done") is None  # not running: no one holds it


def test_a_file_from_before_owners_upgrades_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the runs table as it was before owners
        conn.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, team TEXT, manifest TEXT, status TEXT, "
            "started_at TEXT, updated_at TEXT, pid INTEGER, input TEXT, output TEXT, "
            "errors TEXT, usage TEXT, path TEXT, fingerprint TEXT, definition TEXT)"
        )
        conn.execute(
            "INSERT INTO runs VALUES ('old', 'team', NULL, 'running', '2026-01-01T00:00:00', "
            "'2026-01-01T00:00:00', ?, '{}', 'null', '[]', NULL, '[]', NULL, '{}')",
            (dead_pid(),),
        )
    for _ in range(2):  # idempotent: a second open finds the columns there
        workspace = open_workspace(str(path))
        try:
            record = workspace.runs.get("old")
            assert record is not None
            assert record.owner is None
            assert record.stale
        finally:
            workspace.close()
    workspace = open_workspace(str(path))
    try:
        assert workspace.runs.take_over("old") is None  # its process (by pid) is gone
        record = workspace.runs.get("old")
        assert record is not None
        assert record.owner == workspace.runs.owner
    finally:
        workspace.close()


def test_a_postgres_database_from_before_owners_upgrades_on_open(postgres_url: str) -> None:
    open_workspace(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:  # back to the runs table before owners
        conn.execute("ALTER TABLE runs DROP COLUMN owner, DROP COLUMN expires_at")
        conn.execute(
            "INSERT INTO runs (run_id, team, status, pid, input, output, errors, path) "
            "VALUES ('old', 'team', 'running', %s, '{}', 'null', '[]', '[]')",
            (dead_pid(),),
        )
    for _ in range(2):  # idempotent: a second open finds the columns there
        workspace = open_workspace(postgres_url)
        try:
            record = workspace.runs.get("old")
            assert record is not None
            assert record.owner is None
            assert record.stale
        finally:
            workspace.close()
    workspace = open_workspace(postgres_url)
    try:
        assert workspace.runs.take_over("old") is None  # its process (by pid) is gone
        record = workspace.runs.get("old")
        assert record is not None
        assert record.owner == workspace.runs.owner
    finally:
        workspace.close()
