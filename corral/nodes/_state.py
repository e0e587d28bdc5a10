"""The state a team's graph carries between nodes, and its reducers."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NotRequired

from langgraph.channels import DeltaChannel
from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic reads it on Python < 3.12

from corral.errors import InputError
from corral.manifest import validate


class Handoff(TypedDict):
    """A validated payload on its way along one edge."""

    source: str
    target: str
    schema: str
    payload: dict[str, Any]
    degraded: NotRequired[bool]
    checked: NotRequired[bool]
    """Set by corral's own nodes, which validated the payload before handing it on."""


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


def gather(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any] | None:
    """Reducer: branch answers gather under their agents' ids; ``None`` empties it."""
    if right is None:
        return None
    return {**(left or {}), **right}


PATH_SNAPSHOT_EVERY = 1_000
"""Steps between the full copies of a run's path in its checkpoints; the steps between
store only the agents they add, so a step's bytes do not grow with the run."""


def extend_path(path: list[str], writes: Sequence[list[str]]) -> list[str]:
    """Reducer of the append-only ``_path`` channel: each write adds its agents, in order."""
    return [*path, *(agent for write in writes for agent in write)]


class ReviewRequest(TypedDict):
    """Work waiting for a person: an edge review, low confidence, or an escalation."""

    kind: str
    source: str
    target: str | None
    schema: str
    payload: dict[str, Any]
    reason: str
    timeout_seconds: NotRequired[float]
    """The review's deadline policy (an edge's ``review: {timeout_seconds, on_timeout}``)."""
    on_timeout: NotRequired[str]


class TeamState(TypedDict, total=False):
    """corral's own channels of the graph state. Only validated payloads ever enter
    ``_handoff`` and ``_output``; a payload waiting for review sits in ``_review`` until a
    person lets it through. The names start with ``_``, which no payload field can, so
    the flow's input and output fields share the state without clashing with them.

    ``_path`` is append-only (LangGraph's ``DeltaChannel``): a checkpoint stores the agents
    its step added, and a full copy every ``PATH_SNAPSHOT_EVERY`` steps."""

    _handoff: Handoff
    _path: Annotated[list[str], DeltaChannel(extend_path, snapshot_frequency=PATH_SNAPSHOT_EVERY)]
    _usage: Annotated[Usage, add_usage]
    _output: dict[str, Any] | None
    _review: ReviewRequest | None
    _rejected: str | None
    _joined: Annotated[dict[str, Any] | None, gather]


def guarded_state(
    schemas: Mapping[str, type[BaseModel]],
    output: type[BaseModel],
    *,
    whole_path: bool = False,
    reviews: bool = True,
    joins: bool = True,
) -> type:
    """``TeamState`` for one team, whose channels refuse unvalidated payloads.

    corral's nodes validate every payload before they hand it on. A write from outside
    (``graph.update_state``) is validated here instead: a handoff against the schema it
    names, the output against the flow's output schema; an invalid one raises
    ``InputError`` and changes nothing.

    ``whole_path`` stores the whole path at every step instead: for runs that prune their
    old checkpoints (``checkpoint.keep``), which the append-only path is rebuilt from.
    A team with no step that waits for a person leaves out ``_review`` and ``_rejected``
    (without ``reviews``), one with no join ``_joined`` (without ``joins``): every
    channel costs each step something, written or not.
    """

    def handoff(_current: Handoff | None, new: Handoff | None) -> Handoff | None:
        if new is None or new.get("checked"):
            return new
        schema = schemas.get(str(new.get("schema")))
        if schema is None:
            raise InputError(
                f"a handoff must name one of the team's schemas, not {new.get('schema')!r}",
                field="_handoff",
            )
        return Handoff(
            **{**new, "payload": _valid(schema, new.get("payload"), "_handoff"), "checked": True}
        )

    def result(_current: dict[str, Any] | None, new: dict[str, Any] | None) -> Any:
        return None if new is None else _valid(output, new, "_output")

    fields = dict(TeamState.__annotations__)
    fields["_handoff"] = Annotated[Handoff | None, handoff]
    fields["_output"] = Annotated[dict[str, Any] | None, result]
    if whole_path:
        fields["_path"] = Annotated[list[str], operator.add]
    if not reviews:
        del fields["_review"], fields["_rejected"]
    if not joins:
        del fields["_joined"]
    return TypedDict("TeamState", fields, total=False)  # type: ignore[operator,no-any-return]


def _valid(schema: type[BaseModel], payload: Any, where: str) -> dict[str, Any]:
    valid, errors = validate(schema, payload)
    if valid is None:
        listed = "; ".join(errors)
        raise InputError(
            f"{where} is not a valid {schema.__name__}: {listed}; corral only lets validated "
            "payloads into a run's state",
            field=where,
        )
    return valid
