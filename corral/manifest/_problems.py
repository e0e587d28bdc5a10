"""Pydantic validation errors as ``Problem``s whose fix says what to change."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from corral.errors import Problem

Loc = tuple[str | int, ...]


def pydantic_problems(exc: ValidationError, model: type[BaseModel], data: Any) -> list[Problem]:
    """Every error of ``exc`` as a ``Problem``, but a union's other branch: for a
    mapping given where ``str | Spec`` is allowed, the mistakes inside the mapping
    are the ones to show, not "should be a valid string"."""
    errors = exc.errors()
    return [
        pydantic_problem(e, model, data)
        for e in errors
        if not _other_branch(e, errors, data) and not _short_of_failed(e, errors)
    ]


def _short_of_failed(err: Mapping[str, Any], errors: list[Any]) -> bool:
    """Whether ``err`` says a list is too short only because items of it failed (pydantic
    counts the items that validated): those items' own problems are the ones to show."""
    loc = err["loc"]
    return err["type"] == "too_short" and any(
        len(o["loc"]) > len(loc) and o["loc"][: len(loc)] == loc for o in errors
    )


def _other_branch(err: Mapping[str, Any], errors: list[Any], data: Any) -> bool:
    """Whether ``err`` is a wrong-type error of one union branch (its last step a
    branch name, not in the data) while another branch found mistakes in the value."""
    loc = err["loc"]
    if not err["type"].endswith("_type") or not isinstance(err.get("input"), dict | list):
        return False
    if len(_data_loc(loc, data, keep_last=False)) == len(loc):
        return False
    at = len(loc) - 1
    return any(
        len(o["loc"]) > at + 1 and o["loc"][:at] == loc[:at] and o["loc"][at] != loc[at]
        for o in errors
    )


def pydantic_problem(err: Mapping[str, Any], model: type[BaseModel], data: Any) -> Problem:
    """A pydantic error as a ``Problem`` whose fix says what to change."""
    kind = err["type"]
    loc = _data_loc(err["loc"], data, keep_last=kind in ("missing", "extra_forbidden"))
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
        return Problem(f"unknown key {loc[-1]!r}", f"remove it; {hint}", loc)
    if kind == "missing":
        return Problem(f"missing required key {loc[-1]!r}", f"add `{loc[-1]}:`", loc)
    given = err.get("input")
    message = err["msg"].removeprefix("Value error, ")
    if kind == "too_short":  # pydantic's "... after validation" is about its own counting
        least, has = err["ctx"]["min_length"], err["ctx"]["actual_length"]
        entries = "entry" if least == 1 else "entries"
        return Problem(f"needs at least {least} {entries}, has {has}", _fix_for(kind), loc)
    if not isinstance(given, dict | list | tuple):
        message += f" (got {repr(given)[:80]})"
    return Problem(message, _fix_for(kind), loc)


def _fix_for(kind: str) -> str:
    fixes = {
        "string_pattern_mismatch": "ids are lower_snake_case (agents, teams, models, tools); "
        "schema names are CapWords",
        "literal_error": "use one of the listed values",
        "int_parsing": "give a whole number",
        "int_type": "give a whole number",
        "float_parsing": "give a number",
        "bool_parsing": "give true or false",
        "greater_than": "give a larger value",
        "greater_than_equal": "give a larger value",
        "less_than_equal": "give a smaller value",
        "less_than": "give a smaller value",
        "too_short": "add at least one entry",
        "dict_type": "give a mapping (key: value)",
        "tuple_type": "give a list (- item)",
        "list_type": "give a list (- item)",
        "string_type": "give text",
        "value_error": "change the value as described",
    }
    return fixes.get(kind, "change the value to the expected type")


def _data_loc(loc: tuple[str | int, ...], data: Any, *, keep_last: bool) -> Loc:
    """``loc`` without the union member names pydantic inserts ("str", "ModelSpec")."""
    kept: list[str | int] = []
    current = data
    for i, part in enumerate(loc):
        found = (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        )
        if found:
            current = current[part]
        elif not (keep_last and i == len(loc) - 1):
            continue
        kept.append(part)
    return tuple(kept)


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    for candidate in (current, *get_args(current)):  # `Spec | None`, `str | Spec` too
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return [f.alias or n for n, f in candidate.model_fields.items() if not f.exclude]
    return []


def _step(annotation: Any, part: str | int) -> Any:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            for name, info in candidate.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
        origin = get_origin(candidate)
        if origin in (list, tuple) and isinstance(part, int):
            return get_args(candidate)[0]
        if origin is dict and isinstance(part, str):
            return get_args(candidate)[1]
    return None
