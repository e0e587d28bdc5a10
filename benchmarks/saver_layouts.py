"""What ONE commit of one checkpoint step costs in candidate table layouts (pure sqlite3).

Each layout stores the same step (sizes taken from one 10-node chain run through
``encode_step``: the checkpoint, its metadata, its new channel blobs, the task's writes)
in one ``BEGIN IMMEDIATE`` .. ``COMMIT`` at WAL + ``synchronous=NORMAL``. Contenders are
interleaved step by step (ABCD ABCD ...), each on its own file; the figures are the
median and min of the per-commit time, the paired ratio to the one-page commit, and WAL
pages per commit (frames appended, the autocheckpoint off while counting).

    python benchmarks/saver_layouts.py [--runs 300] [--threads 50]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ormsgpack
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from corral.workspace._encode import encode_step

Step = dict[str, Any]

CURRENT = """
CREATE TABLE cp_checkpoints (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    parent_id TEXT, run_id TEXT, type TEXT NOT NULL, checkpoint BLOB NOT NULL,
    meta_type TEXT NOT NULL, metadata BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)) WITHOUT ROWID;
CREATE INDEX cp_checkpoints_run ON cp_checkpoints (run_id);
CREATE TABLE cp_blobs (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, channel TEXT NOT NULL,
    version TEXT NOT NULL, type TEXT NOT NULL, blob BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)) WITHOUT ROWID;
CREATE TABLE cp_writes (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL, idx INTEGER NOT NULL, channel TEXT NOT NULL,
    type TEXT NOT NULL, blob BLOB, task_path TEXT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)) WITHOUT ROWID;
"""

LOG = """
CREATE TABLE cp_steps (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)) WITHOUT ROWID;
"""

LOG_ROWID = """
CREATE TABLE cp_steps (
    seq INTEGER PRIMARY KEY, thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL, record BLOB NOT NULL);
CREATE UNIQUE INDEX cp_steps_key ON cp_steps (thread_id, checkpoint_ns, checkpoint_id);
"""


def recorded_steps(int_versions: bool) -> list[Step]:
    """One chain run's steps as rows: each put with the writes made before it."""
    import checkpointer  # benchmarks/checkpointer.py, beside this file

    serde = JsonPlusSerializer(pickle_fallback=False)
    steps: list[Step] = []
    writes: list[tuple[Any, ...]] = []
    parent: dict[str, Any] = {"channel_versions": {}, "versions_seen": {}}
    for name, args in checkpointer.recorded_calls(int_versions):
        if name == "put_writes":
            conf, pairs, task_id = args[0]["configurable"], args[1], args[2]
            writes += [
                (conf["checkpoint_id"], task_id, i, ch, *serde.dumps_typed(v), "")
                for i, (ch, v) in enumerate(pairs)
            ]
            continue
        step = encode_step(serde, *args)
        checkpoint = args[1]
        seen = {
            node: {c: v for c, v in vs.items() if parent["versions_seen"].get(node, {}).get(c) != v}
            for node, vs in checkpoint["versions_seen"].items()
        }
        delta = {  # the checkpoint as a change to its parent's versions
            "v": checkpoint["v"],
            "id": checkpoint["id"],
            "ts": checkpoint["ts"],
            "channel_versions": {c: checkpoint["channel_versions"][c] for c in args[3]},
            "versions_seen": {n: vs for n, vs in seen.items() if vs},
            "updated_channels": checkpoint.get("updated_channels"),
        }
        parent = checkpoint
        delta_row = (*step.row[:5], *serde.dumps_typed(delta), *step.row[7:])
        steps.append(
            {"row": step.row, "delta_row": delta_row, "blobs": step.blobs, "writes": writes}
        )
        writes = []
    for step in steps:  # encoded before timing: the commits time SQLite alone
        step["full"], step["delta"] = record(step), record(step, True)
        step["compact"] = compact(step)
    return steps


def current(conn: sqlite3.Connection, thread: str, step: Step, cid: str) -> None:
    row = (thread, "", cid, *step["row"][3:])
    conn.execute("INSERT OR REPLACE INTO cp_checkpoints VALUES (?,?,?,?,?,?,?,?,?)", row)
    conn.executemany(
        "INSERT OR REPLACE INTO cp_blobs VALUES (?,?,?,?,?,?)",
        [(thread, "", *b[2:]) for b in step["blobs"]],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO cp_writes VALUES (?,?,?,?,?,?,?,?,?)",
        [(thread, "", *w) for w in step["writes"]],
    )


def record(step: Step, delta: bool = False) -> bytes:
    """The step as one msgpack record (already-encoded blobs inside); with ``delta`` the
    checkpoint holds only what changed since its parent (new versions, new seen)."""
    row = step["delta_row" if delta else "row"]
    packed: bytes = ormsgpack.packb(
        [
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
            row[8],
            [list(b[2:]) for b in step["blobs"]],
            [list(w) for w in step["writes"]],
        ]
    )
    return packed


def log(conn: sqlite3.Connection, thread: str, step: Step, cid: str) -> None:
    conn.execute("INSERT INTO cp_steps VALUES (?,?,?,?)", (thread, "", cid, step["full"]))


def log_rowid(conn: sqlite3.Connection, thread: str, step: Step, cid: str) -> None:
    conn.execute(
        "INSERT INTO cp_steps (thread_id, checkpoint_ns, checkpoint_id, record) VALUES (?,?,?,?)",
        (thread, "", cid, step["full"]),
    )


LOG_APPEND = """
CREATE TABLE cp_steps (
    seq INTEGER PRIMARY KEY, thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL, record BLOB NOT NULL);
"""


def compact(step: Step) -> bytes:
    """The delta record without what the key or the checkpoint already says: blobs
    without their version (the checkpoint's new versions name it), writes without their
    checkpoint id (the parent's)."""
    row = step["delta_row"]
    packed: bytes = ormsgpack.packb(
        [
            row[3],
            row[6],
            row[8],
            [[b[2], b[5]] for b in step["blobs"]],
            [[w[1], w[2], w[3], w[5]] for w in step["writes"]],
        ]
    )
    return packed


def log_compact(conn: sqlite3.Connection, thread: str, step: Step, cid: str) -> None:
    conn.execute("INSERT INTO cp_steps VALUES (?,?,?,?)", (thread, "", cid, step["compact"]))


def log_delta(conn: sqlite3.Connection, thread: str, step: Step, cid: str) -> None:
    conn.execute("INSERT INTO cp_steps VALUES (?,?,?,?)", (thread, "", cid, step["delta"]))


def log_rowid_delta(conn: sqlite3.Connection, thread: str, step: Step, cid: str) -> None:
    conn.execute(
        "INSERT INTO cp_steps (thread_id, checkpoint_ns, checkpoint_id, record) VALUES (?,?,?,?)",
        (thread, "", cid, step["delta"]),
    )


TIME_KEYED = """
CREATE TABLE cp_steps (
    checkpoint_id TEXT NOT NULL, thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (checkpoint_id, thread_id, checkpoint_ns)) WITHOUT ROWID;
CREATE TABLE cp_heads (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns)) WITHOUT ROWID;
"""


def time_keyed(conn: sqlite3.Connection, thread: str, step: Step, cid: str) -> None:
    conn.execute("INSERT INTO cp_steps VALUES (?,?,?,?)", (cid, thread, "", step["compact"]))
    conn.execute(
        "INSERT INTO cp_heads VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET "
        "checkpoint_id = excluded.checkpoint_id",
        (thread, "", cid),
    )


FOLDED = (
    LOG_APPEND
    + """
CREATE TABLE cp_index (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)) WITHOUT ROWID;
"""
)
FOLD_EVERY = 64


def log_folded(conn: sqlite3.Connection, thread: str, step: Step, cid: str) -> None:
    """The delta log with its key index written lazily: every ``FOLD_EVERY`` steps the
    commit also indexes the rows since the last fold (readers would scan that tail)."""
    seq = conn.execute(
        "INSERT INTO cp_steps (thread_id, checkpoint_ns, checkpoint_id, record) VALUES (?,?,?,?)",
        (thread, "", cid, step["delta"]),
    ).lastrowid
    assert seq is not None
    if seq % FOLD_EVERY == 0:
        conn.execute(
            "INSERT INTO cp_index SELECT thread_id, checkpoint_ns, checkpoint_id, seq "
            "FROM cp_steps WHERE seq > ? ORDER BY thread_id, checkpoint_ns, checkpoint_id",
            (seq - FOLD_EVERY,),
        )


def one_page(conn: sqlite3.Connection, _thread: str, _step: Step, _cid: str) -> None:
    conn.execute("INSERT OR REPLACE INTO t VALUES (1, ?)", (b"x" * 300,))


LAYOUTS: dict[str, tuple[str, Callable[[sqlite3.Connection, str, Step, str], None]]] = {
    "one-page commit (baseline)": ("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)", one_page),
    "current (4 b-trees)": (CURRENT, current),
    "step log, WITHOUT ROWID": (LOG, log),
    "step log, rowid + key index": (LOG_ROWID, log_rowid),
    "step log, rowid, no index": (LOG_APPEND, log_rowid),
    "delta log, WITHOUT ROWID": (LOG, log_delta),
    "delta log, rowid, no index": (LOG_APPEND, log_rowid_delta),
    "compact delta, WITHOUT ROWID": (LOG, log_compact),
    "compact delta, id-first + heads": (TIME_KEYED, time_keyed),
    f"delta log, index every {FOLD_EVERY}": (FOLDED, log_folded),
}


def python_side(rounds: int) -> None:
    """Python per step without SQL: InMemorySaver's put + put_writes, against corral's
    encoding of the same calls (``encode_step`` and the write rows), alone and with the
    step packed into one record; interleaved, per chain run of 12 steps."""
    import checkpointer

    calls = checkpointer.recorded_calls()
    serde = JsonPlusSerializer(pickle_fallback=False)

    def memory() -> None:
        saver = InMemorySaver()
        for name, args in calls:
            getattr(saver, name)(*args)

    def encode(pack: bool) -> Callable[[], None]:
        def run() -> None:
            writes: list[tuple[Any, ...]] = []
            for name, args in calls:
                if name == "put_writes":
                    conf, pairs, task_id = args[0]["configurable"], args[1], args[2]
                    writes += [
                        (conf["checkpoint_id"], task_id, i, ch, *serde.dumps_typed(v), "")
                        for i, (ch, v) in enumerate(pairs)
                    ]
                    continue
                step = encode_step(serde, *args)
                if pack:
                    record({"row": step.row, "blobs": step.blobs, "writes": writes})
                writes = []

        return run

    contenders = {
        "InMemorySaver put + put_writes": memory,
        "corral encoding": encode(False),
        "corral encoding + one record": encode(True),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    steps = sum(1 for name, _ in calls if name == "put")
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) / steps)
    base = times["InMemorySaver put + put_writes"]
    print(f"\nPython per step, no SQL (load average {os.getloadavg()})")
    for name, values in times.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(
            f"{name:32} median {statistics.median(values) * 1e6:6.1f} us "
            f"min {min(values) * 1e6:6.1f} us  paired {ratio:4.2f}x"
        )


def wal_frames(path: Path) -> int:
    wal = Path(f"{path}-wal")
    size = wal.stat().st_size if wal.exists() else 0
    return max(0, (size - 32) // (4096 + 24))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="chain runs per contender")
    parser.add_argument("--threads", type=int, default=50, help="runs already in the file")
    parser.add_argument(
        "--int-versions",
        action="store_true",
        help="integer channel versions, as CorralSaver makes (default: InMemorySaver's strings)",
    )
    args = parser.parse_args()
    steps = recorded_steps(args.int_versions)
    sizes = [len(record(s)) for s in steps]
    deltas = [len(record(s, True)) for s in steps]
    print(f"step record: {min(sizes)}-{max(sizes)} bytes, {len(steps)} steps per run")
    print(f"delta step record: {min(deltas)}-{max(deltas)} bytes")
    small = [len(compact(s)) for s in steps]
    print(f"compact delta record: {min(small)}-{max(small)} bytes")
    with tempfile.TemporaryDirectory() as tmp_name:
        conns: dict[str, tuple[sqlite3.Connection, Path]] = {}
        for name, (schema, _) in LAYOUTS.items():
            path = Path(tmp_name) / f"{len(conns)}.db"
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(schema)
            conns[name] = (conn, path)
            for _ in range(args.threads):  # other runs already stored
                thread = uuid.uuid4().hex
                conn.execute("BEGIN IMMEDIATE")
                for step in steps:
                    LAYOUTS[name][1](conn, thread, step, str(uuid6(clock_seq=-2)))
                conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA wal_autocheckpoint=0")
        times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
        for _ in range(args.runs):
            threads = {name: uuid.uuid4().hex for name in LAYOUTS}
            for step in steps:
                cid = str(uuid6(clock_seq=-2))
                for name, (_, put) in LAYOUTS.items():
                    conn = conns[name][0]
                    start = time.perf_counter()
                    conn.execute("BEGIN IMMEDIATE")
                    put(conn, threads[name], step, cid)
                    conn.execute("COMMIT")
                    times[name].append(time.perf_counter() - start)
        commits = args.runs * len(steps)
        base = times["one-page commit (baseline)"]
        print(f"load average {os.getloadavg()}; {commits} commits per contender, interleaved")
        print(f"{'layout':33} {'median us':>9} {'min us':>7} {'paired x':>8} {'pages':>6}")
        for name, values in times.items():
            ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
            print(
                f"{name:33} {statistics.median(values) * 1e6:9.1f} {min(values) * 1e6:7.1f} "
                f"{ratio:8.2f} {wal_frames(conns[name][1]) / commits:6.2f}"
            )
        for conn, _ in conns.values():
            conn.close()
    python_side(args.runs * 10)


if __name__ == "__main__":
    main()
