"""The context tools an agent is given: bound to its identity, so a model cannot act
as anyone else, whatever its arguments say."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from corral.context._store import ContextStore
from corral.errors import PermissionDenied
from corral.keys import RUN_KEY
from corral.manifest import Who


class _ReadArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["private", "team", "global"]
    key: str
    team: str | None = Field(default=None, description="another team (managers only)")


class _NoteArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    value: Any


class _PublishArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str


def context_tools(store: ContextStore, who: Who) -> dict[str, BaseTool]:
    """``read_context``, ``write_note``, ``publish`` and ``write_global`` for one agent."""

    def run_of(config: RunnableConfig) -> str:
        return str((config.get("metadata") or {}).get(RUN_KEY, ""))

    def guarded(action: Any, done: str | None = None) -> Any:
        try:
            result = action()
        except PermissionDenied as exc:  # said to the model, audited by the store
            return f"denied: {exc}"
        return done if done is not None else result

    def read_context(scope: str, key: str, config: RunnableConfig, team: str | None = None) -> Any:
        """Read one value from your private notes, your team's context, or global context."""
        return guarded(lambda: store.read(run_of(config), who, scope, key, team))  # type: ignore[arg-type]

    def write_note(key: str, value: Any, config: RunnableConfig) -> str:
        """Write a private working note (only you can read it; it expires)."""
        return str(guarded(lambda: store.write_note(run_of(config), who, key, value), "saved"))

    def publish(key: str, config: RunnableConfig) -> str:
        """Share one of your private notes with your team."""
        return str(guarded(lambda: store.publish(run_of(config), who, key), "published"))

    def write_global(key: str, value: Any, config: RunnableConfig) -> str:
        """Write global reference data (supervisors only)."""
        return str(guarded(lambda: store.write_global(run_of(config), who, key, value), "saved"))

    return {
        "read_context": StructuredTool.from_function(read_context, args_schema=_ReadArgs),
        "write_note": StructuredTool.from_function(write_note, args_schema=_NoteArgs),
        "publish": StructuredTool.from_function(publish, args_schema=_PublishArgs),
        "write_global": StructuredTool.from_function(write_global, args_schema=_NoteArgs),
    }
