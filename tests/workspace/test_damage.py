"""A damaged workspace file, met through the CLI: named, never written, checked and
recovered with ``corral doctor``."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from corral import load_team
from tests.conftest import SUPPORT_DESK, TICKET, Cli, run_cli

RUNS = ("a", "b", "c")


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with three completed runs of the support desk (scripted model)."""
    path = tmp_path_factory.mktemp("healthy") / "w.db"
    with load_team(SUPPORT_DESK).compile(db=path) as app:
        for run_id in RUNS:
            assert app.run(json.loads(TICKET.read_text()), run_id=run_id).ok
    return path


def damaged_copy(
    healthy: Path, folder: Path, table: str, *, page: str = "root"
) -> tuple[Path, int]:
    """A copy of ``healthy`` with one page of ``table`` overwritten with garbage (its root
    page, or with ``page="middle"`` a leaf page between its first and last), and the
    number of cells the page held."""
    path = folder / f"{table}-{page}.db"
    shutil.copy(healthy, path)
    number, size = root_page(path, table)
    if page == "middle":
        interior = read_page(path, number, size)
        assert interior[0] in (2, 5), "the table must span several leaf pages"
        assert int.from_bytes(interior[3:5], "big") >= 2  # cells: three children or more
        cell = int.from_bytes(interior[14:16], "big")  # the second child's cell
        number = int.from_bytes(interior[cell : cell + 4], "big")
    cells = int.from_bytes(read_page(path, number, size)[3:5], "big")
    with path.open("r+b") as file:
        file.seek((number - 1) * size)
        file.write(b"\xa5" * size)
    return path, cells


def root_page(path: Path, table: str) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,))
    conn.close()
    return int(root[0]), size


def read_page(path: Path, number: int, size: int) -> bytes:
    with path.open("rb") as file:
        file.seek((number - 1) * size)
        return file.read(size)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_all(folder: Path, *commands: tuple[str | Path, ...]) -> list[Cli]:
    """Run several CLI commands at once (each is a separate process)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "corral", *map(str, args)],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(Cli(proc.returncode, out, err))
    return results


@pytest.mark.parametrize("table", ["runs", "usage", "cp_checkpoints"])
def test_a_damaged_workspace_is_named_and_never_written(
    healthy: Path, tmp_path: Path, table: str
) -> None:
    path, _ = damaged_copy(healthy, tmp_path, table)
    before = digest(path)
    db = ("--db", path.name)
    commands = [
        ("run", SUPPORT_DESK, "--input", f"@{TICKET}", *db, "--run-id", "new"),
        ("runs", *db),
        ("budget", *db),
        ("runs", "show", "a", *db),
    ]
    for args, done in zip(commands, run_all(tmp_path, *commands), strict=True):
        assert done.code == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert f"the workspace {path.name} is damaged" in done.stderr, done.stderr
        assert f"`corral doctor {path.name}`" in done.stderr
        assert f"`corral doctor {path.name} --recover NEW.db`" in done.stderr
    assert digest(path) == before
    assert not Path(f"{path}-wal").exists()


def test_doctor_reports_damage_and_recovers_what_can_be_read(healthy: Path, tmp_path: Path) -> None:
    path, _ = damaged_copy(healthy, tmp_path, "usage")
    blobs_page, lost = damaged_copy(path, tmp_path, "cp_blobs", page="middle")
    with sqlite3.connect(healthy) as conn:
        blobs = int(conn.execute("SELECT count(*) FROM cp_blobs").fetchone()[0])
    conn.close()
    before = digest(blobs_page)
    checked, recovered = run_all(
        tmp_path, ("doctor", blobs_page.name), ("doctor", blobs_page.name, "--recover", "out.db")
    )
    for done in (checked, recovered):
        assert done.code == 5, done.stdout + done.stderr
        assert f"damaged {blobs_page.name}: PRAGMA integrity_check found" in done.stdout
        assert "usage                0 rows, then a damaged page" in done.stdout
        assert "runs                 3 rows\n" in done.stdout
    assert f"corral doctor {blobs_page.name} --recover NEW.db" in checked.stdout
    assert "copied what could be read into out.db" in recovered.stdout
    assert digest(blobs_page) == before

    # The rows before and after the damaged leaf are read; that page's are lost and, in a
    # WITHOUT ROWID table, the entries on either side of it in the page above (SQLite's
    # cursor does not step past the damaged child to them).
    read = int(recovered.stdout.split("\n  cp_blobs")[1].split()[0])
    assert blobs - lost - 2 <= read <= blobs - lost
    again, out_checked = run_all(
        tmp_path, ("doctor", blobs_page.name, "--recover", "out.db"), ("doctor", "out.db")
    )
    assert again.code == 2
    assert "out.db already exists" in again.stderr
    assert out_checked.code == 0, out_checked.stdout
    with sqlite3.connect(tmp_path / "out.db") as conn:
        ids = [r[0] for r in conn.execute("SELECT thread_id FROM cp_blobs")]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    with sqlite3.connect(healthy) as conn:
        assert names == {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    listed = run_cli("runs", "--db", "out.db", "--json", cwd=tmp_path)
    assert listed.code == 0, listed.stderr
    assert [r["run_id"] for r in listed.json] == ["c", "b", "a"]
    assert len(ids) == read
    assert {"a", "c"} <= set(ids)  # rows from before and after the damaged page


def test_doctor_on_a_healthy_file_and_on_one_that_is_no_database(
    healthy: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\xa5" * 8192)
    ok, broken, opened = run_all(
        tmp_path,
        ("doctor", healthy),
        ("doctor", junk.name, "--recover", "out.db"),
        ("runs", "--db", junk.name),
    )
    assert ok.code == 0, ok.stdout
    assert f"ok {healthy}: PRAGMA integrity_check found no problem" in ok.stdout
    assert "runs                 3 rows" in ok.stdout
    assert broken.code == 5
    assert "file is not a database" in broken.stdout
    assert "nothing can be copied out of it" in broken.stdout
    assert not (tmp_path / "out.db").exists()
    assert opened.code == 2
    assert "the workspace junk.db is damaged (file is not a database)" in opened.stderr
    assert "Traceback" not in opened.stderr
    assert junk.read_bytes() == b"\xa5" * 8192


def test_damage_met_mid_run_stops_every_later_write(healthy: Path, tmp_path: Path) -> None:
    # The last leaf of the checkpoint blobs: opening does not read it, a new run's first
    # checkpoint writes into it.
    path = tmp_path / "w.db"
    shutil.copy(healthy, path)
    number, size = root_page(path, "cp_blobs")
    last = int.from_bytes(read_page(path, number, size)[8:12], "big")
    with path.open("r+b") as file:
        file.seek((last - 1) * size)
        file.write(b"\xa5" * size)
    done = run_cli(
        "run", SUPPORT_DESK, "--input", f"@{TICKET}", "--db", path.name, "--run-id", "z", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "the workspace w.db is damaged (database disk image is malformed)" in done.stderr
    with sqlite3.connect(path) as conn:  # the runs table itself is healthy
        status = conn.execute("SELECT status, errors FROM runs WHERE run_id = 'z'").fetchone()
    conn.close()
    assert status == ("running", "[]")  # registered before the damage showed, never after


def test_doctor_recover_into_a_missing_folder_is_refused_by_name(
    healthy: Path, tmp_path: Path
) -> None:
    done = run_cli("doctor", healthy, "--recover", "nodir/x.db", cwd=tmp_path)
    assert done.code == 2, done.stderr
    assert "cannot create --recover nodir/x.db" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "nodir").exists()
