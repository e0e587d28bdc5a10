"""Request bodies, with the field names and defaults of LangGraph's Agent Server API.

Fields a client may send that change what a run does and that corral does not serve are
refused (422) rather than ignored; bookkeeping fields clients always send are accepted.
A run's ``config`` is accepted and not applied (the team file's guards and checkpoint
settings rule): a ``RemoteGraph`` used as a node always sends its parent's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_UNSERVED = (
    "interrupt_before",
    "interrupt_after",
    "webhook",
    "checkpoint",
    "checkpoint_id",
    "after_seconds",
    "context",
    "durability",
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RunCreate(_Body):
    """A run on a thread (or, without a thread, on a new one)."""

    assistant_id: str = Field(min_length=1, max_length=200)
    input: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    stream_mode: str | list[str] = "values"
    metadata: dict[str, Any] | None = None
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: Any = None
    interrupt_after: Any = None
    webhook: Any = None
    checkpoint: Any = None
    checkpoint_id: Any = None
    after_seconds: Any = None
    context: Any = None
    durability: Any = None
    on_completion: Literal["delete", "keep"] | None = None

    @model_validator(mode="after")
    def _served(self) -> RunCreate:
        for name in _UNSERVED:
            if getattr(self, name) is not None:
                raise ValueError(f"{name} is not served by corral")
        if self.on_completion == "delete":
            raise ValueError(
                "on_completion 'delete' is not served by corral: a stateless run's thread "
                "is kept (its run, checkpoints and trace); delete it with DELETE /threads/{id}"
            )
        if self.input is not None and self.command is not None:
            raise ValueError("give input or command, not both")
        return self


class ThreadCreate(_Body):
    thread_id: str | None = Field(default=None, max_length=128)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadSearch(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    ids: list[str] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"


class ThreadCount(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None


class AssistantSearch(_Body):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class HistoryQuery(_Body):
    limit: int = Field(default=10, ge=1, le=1000)
    before: dict[str, Any] | str | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None


class CheckpointQuery(_Body):
    checkpoint: dict[str, Any]
    subgraphs: bool = False


def matches(found: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    """Every key of ``wanted`` has the same value in ``found``."""
    return all(found.get(k) == v for k, v in (wanted or {}).items())
