"""A person's decision on a paused run: exactly one of approve, reject or edit, and an
edit checked against the waiting payload's schema before the run goes on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from corral.errors import InputError
from corral.manifest import TeamPlan, validate


def decision(
    run_id: str,
    request: Mapping[str, Any] | None,
    schema: type[BaseModel] | None,
    *,
    approve: bool = False,
    reject: str | None = None,
    edit: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The resume value for a decision on ``request`` (``None`` when none is needed).

    Raises:
        InputError: a decision for a run that waits for none, not exactly one decision,
            a decision of the wrong type, or an edit that does not fit ``schema`` (the run
            stays paused).
    """
    if type(approve) is not bool:
        raise InputError(
            f"approve is True or False, not {type(approve).__name__} {approve!r}", field="approve"
        )
    if reject is not None and not isinstance(reject, str):
        raise InputError(
            f"reject takes the reason as text, not {type(reject).__name__} {reject!r}",
            field="reject",
        )
    given = [
        name
        for name, value in (("approve", approve), ("reject", reject), ("edit", edit))
        if value not in (False, None)
    ]
    if request is None:
        if given:
            raise InputError(
                f"run {run_id!r} is not waiting for a review; resume it without --{given[0]}",
                field=given[0],
            )
        return None
    if len(given) != 1:
        raise InputError(
            f"run {run_id!r} waits for a review ({request['reason']}); "
            "decide with exactly one of approve, reject or edit",
            field="decision",
        )
    if edit is not None and not isinstance(edit, Mapping):
        raise InputError(
            f"the edit must be a mapping of {request['schema']}'s fields, not "
            f"{type(edit).__name__}. The run is still waiting for a review",
            field="edit",
        )
    if edit is not None and schema is not None:
        _, errors = validate(schema, dict(edit))
        if errors:
            raise InputError(
                f"the edit is not a valid {request['schema']}: "
                + "; ".join(errors)
                + ". The run is still waiting for a review",
                field=errors[0].split(":")[0],
            )
    return {
        "action": given[0],
        "reason": reject,
        "payload": dict(edit) if edit is not None else None,
    }


def review_schema(plan: TeamPlan, name: str) -> type[BaseModel] | None:
    """The schema an edit must fit: a payload schema, or a tool's arguments."""
    if name.startswith("tool:"):
        for agent in plan.agents.values():
            for held in agent.tools:
                schema = held.tool.args_schema
                if held.name == name[5:] and isinstance(schema, type):
                    return schema if issubclass(schema, BaseModel) else None
        return None
    return plan.schemas[name]
