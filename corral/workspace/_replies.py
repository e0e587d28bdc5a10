"""Model replies kept with their ledger rows, so a re-executed task (a crash resumed, an
activity retried) replays a model call that finished instead of calling and billing again.

Each model call of a piece of work has a key: the run, the work's task key and the call's
place in that work (``reply_key``). A reservation writes the key with its ledger row, and
the settlement writes the answer, each in the ledger's own transaction: a call that
finished is answered from its record, and a call a crash cut short is known by its
reservation, which is given back before the call is made again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from corral.workspace._db import ConnectionPool
from corral.workspace._strict import allowed_types, decode
from corral.workspace._tool_calls import Pool


@dataclass(frozen=True, slots=True)
class Reply:
    """A settled call's answer, encoded (LangGraph's serializer), under its call key."""

    key: str
    run_id: str
    type: str
    blob: bytes


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the workspace holds of a call key: the answer of a call that settled, or
    (``settled`` false) the ledger row of a reservation whose call never settled."""

    settled: bool
    answer: Any = None
    reserved: int | None = None


def reply_key(run_id: str, task: str, index: int) -> str:
    """The key of the ``index``-th model call of a piece of work (same call, same key)."""
    text = json.dumps(["model", run_id, task, index])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def reply_of(key: str, run_id: str, answer: Any) -> Reply | None:
    """``answer`` encoded for its record; ``None`` if it cannot be (then it is not kept,
    and a re-executed task calls the model again)."""
    try:
        type_, blob = JsonPlusSerializer().dumps_typed(answer)
    except Exception:  # an answer the serializer does not know: billed, not replayable
        return None
    return Reply(key, run_id, type_, blob)


def hold(conn: Any, mark: str, key: str, *, run_id: str, row: int, at: float) -> None:
    """In a reservation's transaction: the call ``key`` holds ledger row ``row``."""
    p = mark
    conn.execute(
        "INSERT INTO model_replies (key, run_id, usage_id, at) "
        f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (key) DO UPDATE SET "
        "usage_id = excluded.usage_id, at = excluded.at WHERE model_replies.reply IS NULL",
        (key, run_id, row, at),
    )


def keep(conn: Any, mark: str, reply: Reply, row: int | None, at: float) -> None:
    """In a settlement's transaction: the call's answer (the first one kept wins)."""
    p = mark
    conn.execute(
        "INSERT INTO model_replies (key, run_id, usage_id, type, reply, at) "
        f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (key) DO UPDATE SET "
        "usage_id = excluded.usage_id, type = excluded.type, reply = excluded.reply, "
        "at = excluded.at WHERE model_replies.reply IS NULL",
        (reply.key, reply.run_id, row, reply.type, reply.blob, at),
    )


@dataclass
class Replies:
    """The ``model_replies`` table. One logic for every backend: they differ only in
    their pool and their placeholder (``mark``)."""

    pool: Pool
    mark: ClassVar[str] = "?"

    def find(self, key: str) -> Recorded | None:
        """What is recorded of call ``key``: its answer, or its unsettled reservation.

        Raises:
            CheckpointError: the stored answer does not decode, or would build a type
                outside LangGraph's safe list (the record was altered).
        """
        with self.pool.read() as conn:
            row = conn.execute(
                f"SELECT usage_id, type, reply FROM model_replies WHERE key = {self.mark}", (key,)
            ).fetchone()
        if row is None:
            return None
        usage_id, type_, blob = row
        if blob is None:
            return Recorded(False, reserved=None if usage_id is None else int(usage_id))
        answer = decode(
            JsonPlusSerializer(), allowed_types(None), str(type_), bytes(blob), f"call {key}"
        )
        return Recorded(True, answer=answer)

    def forget(self, keys: list[str]) -> None:
        """Keep no answer for ``keys`` (their ledger rows stay): a task that re-runs asks
        the model again for those calls, as for answers its agent could not use."""
        marks = ", ".join(self.mark for _ in keys)
        with self.pool.write() as conn:
            conn.execute(f"DELETE FROM model_replies WHERE key IN ({marks})", keys)


@dataclass
class SqliteReplies(Replies):
    """The ``model_replies`` table of a SQLite workspace."""

    pool: ConnectionPool

    def __post_init__(self) -> None:
        self.pool.ensure(
            "model_replies",
            {
                "key": str,
                "run_id": str,
                "usage_id": int,
                "type": str,
                "reply": bytes,
                "at": float,
            },
            pk="key",
            indexes=[("run_id",)],
        )


@dataclass
class PgReplies(Replies):
    """The ``model_replies`` table of a Postgres workspace (made with its schema)."""

    mark: ClassVar[str] = "%s"
