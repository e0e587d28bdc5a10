"""Payload schemas: the base of those a team file declares, and checking a payload
against its schema with errors a model or a person can act on."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import DEFAULT_REF_TEMPLATE, GenerateJsonSchema, JsonSchemaMode

ModelT = TypeVar("ModelT", bound=BaseModel)


class Payload(BaseModel):
    """Base of the schemas declared in a team file: unknown keys are refused, and the
    JSON Schema is made once per class and mode. langchain asks for it at every bind
    (once per agent, and per delegation tool), so a team of 1,000 agents sharing one
    schema would otherwise build the same schema over a thousand times."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def model_json_schema(
        cls,
        by_alias: bool | None = None,
        ref_template: str = DEFAULT_REF_TEMPLATE,
        schema_generator: type[GenerateJsonSchema] = GenerateJsonSchema,
        mode: JsonSchemaMode = "validation",
        *,
        union_format: Literal["any_of", "primitive_type_array"] = "any_of",
    ) -> dict[str, Any]:
        if schema_generator is not GenerateJsonSchema:  # a caller's own: not cached
            return super().model_json_schema(
                by_alias, ref_template, schema_generator, mode, union_format=union_format
            )
        made = _json_schema(cls, by_alias, ref_template, mode, union_format=union_format)
        return copy.deepcopy(made)  # the caller's to change


@lru_cache(maxsize=1024)
def _json_schema(
    cls: type[Payload],
    by_alias: bool | None,
    ref_template: str,
    mode: JsonSchemaMode,
    *,
    union_format: Literal["any_of", "primitive_type_array"],
) -> dict[str, Any]:
    return super(Payload, cls).model_json_schema(
        by_alias, ref_template, GenerateJsonSchema, mode, union_format=union_format
    )


def validate(schema: type[BaseModel], value: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """``(payload, [])`` if ``value`` is valid for ``schema``, else ``(None, errors)``."""
    if type(value) is not schema:
        if isinstance(value, BaseModel):
            value = value.model_dump()
        try:
            value = typed(schema, value)
        except ValidationError as exc:
            return None, error_lines(exc)
    try:
        if schema.model_dump is not _DUMP:  # the schema's own dump decides its payload
            payload: dict[str, Any] = value.model_dump(mode="json")
        else:  # pydantic-core's serializer itself: ``model_dump`` is a wrapper that costs
            # as much again, and a flow step checks a payload or two.
            payload = schema.__pydantic_serializer__.to_python(value, mode="json")
    except ValueError as exc:  # valid, but not as JSON: bytes not UTF-8, too deep, an object
        return None, [f"<root>: cannot be stored as JSON ({type(exc).__name__}: {exc})"]
    wide = None if _packs(payload) else _wide(payload)
    if wide is not None:
        where = ".".join(str(p) for p in wide[:-1]) or "<root>"
        return None, [
            f"{where}: {wide[-1]} is too large to be checkpointed (a whole number must fit "
            f"in 64 bits: from {_LOWEST:,} to {_HIGHEST:,})"
        ]
    return payload, []


_LOWEST, _HIGHEST = -(2**63), 2**64 - 1  # what LangGraph's checkpoint format (msgpack) holds


def _packs(payload: dict[str, Any]) -> bool:
    """Whether LangGraph's checkpoint format holds ``payload`` (msgpack, in C: a few
    hundred nanoseconds for a small payload; ``_wide`` only says where it fails)."""
    import ormsgpack  # not at import: checking a team file never needs it

    try:
        ormsgpack.packb(payload)
    except TypeError:
        return False
    return True


def _wide(value: Any) -> list[Any] | None:
    """The path to the first whole number of a JSON value that msgpack cannot hold, and
    the number last; None if there is none."""
    if type(value) is int:
        return None if _LOWEST <= value <= _HIGHEST else [value]
    inside = (
        value.items() if type(value) is dict else enumerate(value) if type(value) is list else ()
    )
    for key, item in inside:
        found = _wide(item)
        if found is not None:
            return [key, *found]
    return None


_DUMP = BaseModel.model_dump
_VALIDATE = BaseModel.model_validate.__func__  # type: ignore[attr-defined]


def typed(schema: type[ModelT], value: Any) -> ModelT:
    """``value`` as a ``schema`` instance: ``model_validate``, without its wrapper (half
    the cost) unless the schema has its own; raises ``ValidationError``."""
    if schema.model_validate.__func__ is not _VALIDATE:  # type: ignore[attr-defined]
        return schema.model_validate(value)
    made: ModelT = schema.__pydantic_validator__.validate_python(value)
    return made


def error_lines(exc: ValidationError) -> list[str]:
    """Pydantic errors as ``field: message`` lines a model (or a person) can act on."""
    return [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()]
