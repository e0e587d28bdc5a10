"""The workspace database: one SQLite file holding checkpoints and corral's tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from corral.errors import InputError

DEFAULT_DB = Path(".corral") / "corral.db"


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a workspace file in WAL mode with a busy timeout.

    Raises:
        InputError: the path cannot hold a writable SQLite database.
    """
    if path.is_dir():
        raise InputError(f"workspace database {path} is a directory; pass a file path "
                         "such as .corral/corral.db", field="db")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
    except (OSError, sqlite3.Error) as exc:
        raise InputError(f"cannot create the workspace database {path}: {exc}; pass a "
                         "writable path with --db", field="db") from None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        with conn:
            conn.execute("CREATE TABLE IF NOT EXISTS corral_meta "
                         "(key TEXT PRIMARY KEY, value TEXT)")
    except sqlite3.Error as exc:
        conn.close()
        raise InputError(f"cannot write the workspace database {path}: {exc}; pass a "
                         "writable path with --db", field="db") from None
    return conn
