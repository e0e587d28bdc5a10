"""Checking a payload against its schema, with errors a model or a person can act on."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError


def validate(schema: type[BaseModel], value: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """``(payload, [])`` if ``value`` is valid for ``schema``, else ``(None, errors)``."""
    if type(value) is schema:
        return value.model_dump(mode="json"), []
    if isinstance(value, BaseModel):
        value = value.model_dump()
    try:
        return schema.model_validate(value).model_dump(mode="json"), []
    except ValidationError as exc:
        return None, error_lines(exc)


def error_lines(exc: ValidationError) -> list[str]:
    """Pydantic errors as ``field: message`` lines a model (or a person) can act on."""
    return [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()]
