"""Model replies kept with their ledger rows, on every backend (the ``workspace``
fixture): a settled call's answer comes back as it was, a reservation a crash left
unsettled is known by its row, the first answer kept wins, an altered record is refused."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from langchain_core.messages import AIMessage

from corral.errors import CheckpointError
from corral.workspace import (
    BudgetLimits,
    SqliteWorkspace,
    Workspace,
    reply_key,
    reply_of,
)

LIMITS = BudgetLimits(task_tokens=10_000)


def answer(text: str) -> AIMessage:
    return AIMessage(
        content=text,
        tool_calls=[{"name": "post", "args": {"entry": text}, "id": "call_1"}],
        usage_metadata={"input_tokens": 12, "output_tokens": 5, "total_tokens": 17},
        response_metadata={"model_name": "scripted", "script_index": 0},
    )


def settle(workspace: Workspace, row: int, key: str, said: AIMessage) -> None:
    workspace.ledger.settle(
        row,
        agent="clerk",
        model="scripted",
        input_tokens=12,
        output_tokens=5,
        cached_tokens=0,
        cost=None,
        latency_ms=1.0,
        limits=LIMITS,
        reply=reply_of(key, "r", said),
    )


def reserve(workspace: Workspace, key: str) -> int:
    return workspace.ledger.reserve(
        run_id="r",
        task_key="r:clerk@1",
        agent="clerk",
        model="scripted",
        tokens=100,
        cost=0.0,
        limits=LIMITS,
        call=key,
    )


def test_keys_are_the_same_for_the_same_call_and_differ_by_place() -> None:
    assert reply_key("r", "r:clerk@1", 0) == reply_key("r", "r:clerk@1", 0)
    keys = {reply_key("r", "r:clerk@1", 0), reply_key("r", "r:clerk@1", 1)}
    keys |= {reply_key("r", "r:clerk@2", 0), reply_key("r2", "r:clerk@1", 0)}
    assert len(keys) == 4


def test_a_reserved_call_is_known_by_its_row_then_replays_its_answer(
    workspace: Workspace,
) -> None:
    ledger = workspace.ledger
    key = reply_key("r", "r:clerk@1", 0)
    assert ledger.reply(key) is None  # never called
    row = reserve(workspace, key)
    found = ledger.reply(key)
    assert found is not None
    assert (found.settled, found.reserved) == (False, row)  # a crash here: row given back
    said = answer("refund INV-7")
    settle(workspace, row, key, said)
    found = ledger.reply(key)
    assert found is not None
    assert found.settled
    assert isinstance(found.answer, AIMessage)
    assert found.answer.content == said.content
    assert found.answer.tool_calls == said.tool_calls
    assert found.answer.usage_metadata == said.usage_metadata
    assert found.answer.response_metadata == said.response_metadata
    assert [c["status"] for c in ledger.calls("r")] == ["settled"]


def test_an_unreserved_call_keeps_its_answer_with_its_row_and_the_first_answer_wins(
    workspace: Workspace,
) -> None:
    ledger = workspace.ledger
    key = reply_key("r", "r:clerk@1", 0)
    for text in ("first", "second"):
        ledger.record(
            run_id="r",
            task_key="r:clerk@1",
            agent="clerk",
            model="scripted",
            input_tokens=12,
            output_tokens=5,
            cached_tokens=0,
            cost=None,
            latency_ms=1.0,
            reply=reply_of(key, "r", answer(text)),
        )
    found = ledger.reply(key)
    assert found is not None
    assert found.settled
    assert found.answer.content == "first"
    # a reservation made after the answer was kept does not hide it
    reserve(workspace, key)
    again = ledger.reply(key)
    assert again is not None
    assert again.settled
    assert again.answer.content == "first"


def test_a_reservation_given_back_is_not_an_answer(workspace: Workspace) -> None:
    ledger = workspace.ledger
    key = reply_key("r", "r:clerk@1", 0)
    row = reserve(workspace, key)
    ledger.release(row)
    found = ledger.reply(key)
    assert found is not None
    assert not found.settled  # the call runs again; releasing again changes nothing
    ledger.release(row)
    assert [c["status"] for c in ledger.calls("r")] == ["released"]


def test_an_answer_that_cannot_be_encoded_is_billed_and_not_kept() -> None:
    assert reply_of("k", "r", object()) is None


def test_an_altered_answer_is_refused_not_loaded(workspace: Workspace) -> None:
    ledger = workspace.ledger
    key = reply_key("r", "r:clerk@1", 0)
    settle(workspace, reserve(workspace, key), key, answer("x"))
    kept = reply_of(key, "r", answer("x"))
    assert kept is not None
    evil = kept.blob.replace(b"langchain_core", b"subprocess\x00\x00\x00\x00")  # same length
    assert evil != kept.blob
    if isinstance(workspace, SqliteWorkspace):
        with sqlite3.connect(workspace.path) as conn:
            conn.execute("UPDATE model_replies SET reply = ? WHERE key = ?", (evil, key))
        conn.close()
    else:
        url = workspace.url  # type: ignore[attr-defined]
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("UPDATE model_replies SET reply = %s WHERE key = %s", (evil, key))
    with pytest.raises(CheckpointError, match="cannot be decoded"):
        ledger.reply(key)
