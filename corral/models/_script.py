"""Script files for the scripted model: replies for demos and fault injection.

A script gives, per agent (or for any agent), the replies to return in order::

    agents:
      triage:
        - raw: "not JSON"                 # an invalid reply, to exercise the retry
        - output: {category: billing}     # exactly this structured output
        - tool: {name: lookup, args: {id: 7}}  # call this tool (even one it lacks)
        - delegate: [{assignee: billing, instruction: check it, payload: {...}}]
      billing:
        - error: rate_limit               # raise a provider-like 429 error
        - auto: true                      # derive a valid answer from the schema
          delay: 0.2                      # wait before answering
    replies: []                           # used by agents not listed above
    then: auto                            # after the replies: auto | error | repeat (the last)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

ErrorKind = Literal["rate_limit", "timeout", "server", "bad_request", "connection"]


class ToolRequest(BaseModel):
    """A tool call the scripted model makes, whatever tools it was given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    args: dict[str, JsonValue] = Field(default_factory=dict)


class Reply(BaseModel):
    """One scripted reply: exactly one of ``raw``, ``output``, ``tool``, ``delegate``
    (subtasks for a supervisor), ``error`` or ``auto``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw: str | None = None
    output: dict[str, JsonValue] | None = None
    tool: ToolRequest | None = None
    delegate: tuple[dict[str, JsonValue], ...] | None = None
    error: ErrorKind | None = None
    auto: bool | None = None
    delay: float = Field(default=0.0, ge=0, le=600)
    retry_after: float | None = Field(default=None, ge=0, le=600)

    @model_validator(mode="after")
    def _one_kind(self) -> Reply:
        kinds = [
            k
            for k in ("raw", "output", "tool", "delegate", "error", "auto")
            if getattr(self, k) is not None
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a reply needs exactly one of raw, output, tool, delegate, error or "
                "auto; got " + (", ".join(kinds) or "none")
            )
        return self


AUTO = Reply(auto=True)


class Script(BaseModel):
    """Replies per agent, then what to do when they run out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: dict[str, tuple[Reply, ...]] = Field(default_factory=dict)
    replies: tuple[Reply, ...] = ()
    then: Literal["auto", "error", "repeat"] = "auto"

    def reply(self, agent: str | None, index: int) -> Reply | None:
        """The ``index``-th reply for ``agent``; ``None`` means raise "script exhausted"."""
        replies = self.agents.get(agent or "", self.replies)
        if index < len(replies):
            return replies[index]
        if self.then == "repeat" and replies:
            return replies[-1]
        return AUTO if self.then in ("auto", "repeat") else None
