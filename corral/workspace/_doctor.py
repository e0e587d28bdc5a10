"""Check a workspace file, and copy what can still be read into a new one.

The file checked is opened read-only and never written. Python's ``sqlite3`` has no
recovery API (the ``sqlite3`` shell's ``.recover`` needs an extension it lacks, and
``iterdump`` stops at the first damaged page), so each table is copied row by row: in
key order up to the first damaged page, then backwards from the end down to it. Rows
on a page that no table reaches any more (a damaged root or interior page) are lost.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.errors import InputError

MAX_PROBLEMS = 1000
"""``PRAGMA integrity_check`` stops after this many problems."""


@dataclass(frozen=True, slots=True)
class TableRead:
    """One table: the rows read, and SQLite's message if a damaged page stopped a read."""

    name: str
    rows: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Checkup:
    """What ``check_workspace`` (or ``recover_workspace``) found in a workspace file."""

    path: str
    problems: list[str]
    """``PRAGMA integrity_check``'s findings (or the error that stopped it); empty if ok."""
    tables: list[TableRead]
    schema_error: str | None = None
    """Why the list of tables could not be read, if it could not."""

    @property
    def ok(self) -> bool:
        """No problem found, and every table read whole."""
        return not self.problems and self.schema_error is None and not self.damaged_tables

    @property
    def damaged_tables(self) -> list[TableRead]:
        """The tables a damaged page stopped reading."""
        return [t for t in self.tables if t.error is not None]


def check_workspace(path: Path) -> Checkup:
    """Run ``PRAGMA integrity_check`` on ``path`` and count each table's readable rows."""
    with _read_only(path) as conn:
        try:
            found = [str(r[0]) for r in conn.execute(f"PRAGMA integrity_check({MAX_PROBLEMS})")]
            problems = [] if found == ["ok"] else found
        except sqlite3.DatabaseError as exc:
            problems = [f"the check itself stopped: {exc}"]
        try:
            schema = _schema(conn)
        except sqlite3.DatabaseError as exc:
            return Checkup(str(path), problems, [], schema_error=str(exc))
        reads = []
        for name, sql, _ in (entry for entry in schema if entry[2] == "table"):
            errors: list[str] = []
            rows = sum(1 for _ in _scan(conn, name, sql, errors))
            reads.append(TableRead(name, rows, errors[0] if errors else None))
    return Checkup(str(path), problems, reads)


def recover_workspace(path: Path, out: Path) -> Checkup:
    """Copy every readable row of ``path`` into the new file ``out`` (the same tables and
    indexes); ``path`` is only read. The result lists what each table gave."""
    if out.exists():
        raise InputError(f"{out} already exists; --recover writes a new file only", field="out")
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    with _read_only(path) as conn:
        try:
            schema = _schema(conn)
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            return Checkup(str(path), [str(exc)], [], schema_error=str(exc))
        try:
            copy = sqlite3.connect(part, isolation_level=None)
        except sqlite3.Error as exc:  # no such folder, no right to write there
            raise InputError(
                f"cannot create --recover {out}: {exc} (is {out.parent} a folder you can "
                "write in?)",
                field="out",
            ) from None
        try:
            copy.execute("BEGIN")
            reads = [_copy(conn, copy, name, sql) for name, sql, kind in schema if kind == "table"]
            for _, sql, _ in (entry for entry in schema if entry[2] != "table"):
                copy.execute(sql)
            copy.execute(f"PRAGMA user_version = {version}")
            copy.execute("COMMIT")
        finally:
            copy.close()
    part.rename(out)
    return Checkup(str(path), [], reads)


def _copy(source: sqlite3.Connection, copy: sqlite3.Connection, name: str, sql: str) -> TableRead:
    copy.execute(sql)
    errors: list[str] = []
    rows = 0
    insert: str | None = None
    for row in _scan(source, name, sql, errors):
        if insert is None:
            insert = f"INSERT OR IGNORE INTO {_quote(name)} VALUES ({', '.join('?' * len(row))})"
        copy.execute(insert, row)
        rows += 1
    return TableRead(name, rows, errors[0] if errors else None)


def _scan(
    conn: sqlite3.Connection, name: str, sql: str, errors: list[str]
) -> Iterator[tuple[Any, ...]]:
    """Every row of ``name`` that can be read: forwards in key order until a damaged page,
    then backwards from the last row down to the last one read. SQLite's message for the
    damage goes into ``errors``."""
    if re.search(r"\bWITHOUT\s+ROWID\b", sql, re.IGNORECASE):
        pk = [r for r in conn.execute(f"PRAGMA table_info({_quote(name)})") if r[5] > 0]
        keys = [_quote(str(r[1])) for r in sorted(pk, key=lambda r: int(r[5]))]
    else:
        keys = ["rowid"]
    width = len(keys)
    listed = ", ".join(keys)
    select = f"SELECT {listed}, * FROM {_quote(name)}"
    last: tuple[Any, ...] | None = None
    for row in _rows(conn, f"{select} ORDER BY {listed}", (), errors):
        last = row[:width]
        yield row[width:]
    if not errors:
        return
    after = f" WHERE ({listed}) > ({', '.join('?' * width)})" if last is not None else ""
    backwards = ", ".join(f"{key} DESC" for key in keys)
    for row in _rows(conn, f"{select}{after} ORDER BY {backwards}", last or (), []):
        yield row[width:]


def _rows(
    conn: sqlite3.Connection, query: str, args: tuple[Any, ...], errors: list[str]
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` up to the first error (recorded in ``errors``)."""
    try:
        cursor = conn.execute(query, args)
        while (row := cursor.fetchone()) is not None:
            yield tuple(row)
    except sqlite3.DatabaseError as exc:
        errors.append(str(exc))


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(name, sql, type) of every table, then every index, trigger and view."""
    rows = conn.execute(
        "SELECT name, sql, type FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type != 'table', rowid"
    ).fetchall()
    return [(str(n), str(s), str(t)) for n, s, t in rows]


def _read_only(path: Path) -> closing[sqlite3.Connection]:
    """A read-only connection to an existing file (closed at the end of a ``with``)."""
    if not path.is_file():
        folder = " (a folder; give the workspace file in it)" if path.is_dir() else ""
        raise InputError(f"there is no workspace at {path}{folder}", field="db")
    return closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
