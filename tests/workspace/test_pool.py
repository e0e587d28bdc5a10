"""The workspace's connection pool hands out the connection given back last."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from corral.workspace._db import ConnectionPool


def test_the_connection_given_back_last_is_handed_out_next(tmp_path: Path) -> None:
    """Its page cache is the warm one: another connection's commit would void the cache of
    the one it takes, and its next transaction would read every page again."""
    pool = ConnectionPool(tmp_path / "w.db")
    try:
        with pool.connection() as first, pool.connection() as second:
            assert first is not second  # two at once: two connections
        # ``first`` was given back last (the blocks close inside out)
        for _ in range(3):
            with pool.write() as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
                conn.execute("INSERT INTO t VALUES (1)")
            assert conn is first
            with pool.read() as conn:
                assert conn.execute("SELECT count(*) FROM t").fetchone()[0] > 0
            assert conn is first
    finally:
        pool.close()


def test_threads_each_get_their_own_connection_while_they_hold_one(tmp_path: Path) -> None:
    pool = ConnectionPool(tmp_path / "w.db")
    held: list[sqlite3.Connection] = []
    inside = threading.Barrier(4)

    def hold() -> None:
        with pool.connection() as conn:
            held.append(conn)
            inside.wait(timeout=10)  # all four hold theirs at once

    try:
        threads = [threading.Thread(target=hold) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(conn) for conn in held}) == 4
        with pool.connection() as again:  # no connection is opened beyond those four
            assert any(again is conn for conn in held)
    finally:
        pool.close()
