"""The state a team's graph carries between nodes, and its reducers."""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from typing_extensions import TypedDict  # pydantic reads it on Python < 3.12


class Handoff(TypedDict):
    """A validated payload on its way along one edge."""

    source: str
    target: str
    schema: str
    payload: dict[str, Any]
    degraded: NotRequired[bool]


class Usage(TypedDict):
    """Model usage summed over a run."""

    input_tokens: int
    output_tokens: int
    llm_calls: int


def add_usage(left: Usage | None, right: Usage | None) -> Usage:
    """Reducer: usage adds up across nodes."""
    if not left:
        return right or Usage(input_tokens=0, output_tokens=0, llm_calls=0)
    if not right:
        return left
    return Usage(
        input_tokens=left["input_tokens"] + right["input_tokens"],
        output_tokens=left["output_tokens"] + right["output_tokens"],
        llm_calls=left["llm_calls"] + right["llm_calls"],
    )


NO_USAGE = Usage(input_tokens=0, output_tokens=0, llm_calls=0)
"""No model usage (the start of every sum)."""


class ReviewRequest(TypedDict):
    """Work waiting for a person: an edge review, low confidence, or an escalation."""

    kind: str
    source: str
    target: str | None
    schema: str
    payload: dict[str, Any]
    reason: str


class TeamState(TypedDict, total=False):
    """corral's own channels of the graph state. Only validated payloads ever enter
    ``_handoff`` and ``_output``; a payload waiting for review sits in ``_review`` until a
    person lets it through. The names start with ``_``, which no payload field can, so
    the flow's input and output fields share the state without clashing with them."""

    _handoff: Handoff
    _path: Annotated[list[str], operator.add]
    _usage: Annotated[Usage, add_usage]
    _output: dict[str, Any] | None
    _review: ReviewRequest | None
    _rejected: str | None
