"""What goes on the wire: JSON for anything a graph holds, and LangGraph's state shapes."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException
from langgraph.types import Interrupt, StateSnapshot
from pydantic import BaseModel


def now_iso() -> str:
    """The time now, as the API writes it (ISO 8601, UTC)."""
    return datetime.now(UTC).isoformat()


def _default(value: Any) -> Any:
    if isinstance(value, Interrupt):
        return {"value": value.value, "id": value.id}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def dumps(value: Any) -> str:
    """``value`` as JSON text; what JSON cannot hold is written as its repr."""
    return json.dumps(value, default=_default, ensure_ascii=False)


def plain(value: Any) -> Any:
    """``value`` as plain JSON data (dicts, lists, strings, numbers)."""
    return json.loads(dumps(value))


def interrupt(item: Interrupt) -> dict[str, Any]:
    """A LangGraph ``Interrupt`` as the SDK reads it: its value and its id."""
    return {"value": plain(item.value), "id": item.id}


def _checkpoint(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": None,
    }


def thread_state(snapshot: StateSnapshot, thread_id: str) -> dict[str, Any]:
    """A ``StateSnapshot`` as the SDK's ``ThreadState``."""
    checkpoint = _checkpoint(snapshot.config) or {
        "thread_id": thread_id,
        "checkpoint_ns": "",
        "checkpoint_id": None,
        "checkpoint_map": None,
    }
    return {
        "values": plain(snapshot.values),
        "next": list(snapshot.next),
        "checkpoint": checkpoint,
        "metadata": plain(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": _checkpoint(snapshot.parent_config),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "error": None if task.error is None else str(task.error),
                "interrupts": [interrupt(i) for i in task.interrupts],
                "checkpoint": None,
                "state": None,
                "result": plain(task.result) if task.result is not None else None,
            }
            for task in snapshot.tasks
        ],
        "interrupts": [interrupt(i) for i in snapshot.interrupts],
    }


def interrupts_by_task(snapshot: StateSnapshot) -> dict[str, list[dict[str, Any]]]:
    """A thread's ``interrupts``: the waiting interrupts under their task's id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for task in snapshot.tasks:
        if task.interrupts:
            found[task.id] = [interrupt(i) for i in task.interrupts]
    return found


_NAMESPACE = uuid.UUID("5b3f0c1e-7d0a-4c55-9a8e-3f1c2d9e6a01")


def assistant_id(team: str) -> str:
    """A team's assistant id: stable across restarts."""
    return str(uuid.uuid5(_NAMESPACE, team))


@dataclass
class ThreadInfo:
    """What the server knows of a thread beyond the workspace: when and how it was made."""

    thread_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    team: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


def refuse(status: int, message: str) -> HTTPException:
    """An HTTP error with a message that says what to do."""
    return HTTPException(status_code=status, detail=message)
