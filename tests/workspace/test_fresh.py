"""A fresh workspace opened by several processes at the same instant: the schema is
created once, under a lock, and every process runs; a newer corral's file is refused."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from corral.errors import InputError
from corral.workspace import open_workspace
from tests.conftest import SUPPORT_DESK, TICKET


def _run(db: str, barrier: Any, out: Any) -> None:
    from corral import load_team

    team = load_team(SUPPORT_DESK)
    barrier.wait()
    try:
        with team.compile(db=db) as app:
            out.put(app.run(json.loads(TICKET.read_text())).status)
    except Exception as exc:  # reported to the test, which fails on it
        out.put(f"{type(exc).__name__}: {exc}")


def test_six_processes_open_one_fresh_workspace_at_once(tmp_path: Path) -> None:
    for trial in range(3):
        db = tmp_path / f"trial{trial}" / "w.db"
        barrier = multiprocessing.Barrier(6)
        out: Any = multiprocessing.Queue()
        workers = [
            multiprocessing.Process(target=_run, args=(str(db), barrier, out)) for _ in range(6)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert [out.get(timeout=10) for _ in workers] == ["completed"] * 6
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 1


def test_a_workspace_from_a_newer_corral_is_refused_not_downgraded(tmp_path: Path) -> None:
    db = tmp_path / "newer.db"
    open_workspace(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(InputError, match="newer corral"):
        open_workspace(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
