"""Every property of the team file's JSON Schema is documented, so editors show help."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from corral import manifest_json_schema


def _undocumented(node: Any, where: str) -> Iterator[str]:
    """Paths of properties without a non-empty ``description``, anywhere under ``node``."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _undocumented(item, f"{where}[{i}]")
        return
    if not isinstance(node, dict):
        return
    for name, prop in node.get("properties", {}).items():
        description = prop.get("description") if isinstance(prop, dict) else None
        if not (isinstance(description, str) and description.strip()):
            yield f"{where}.{name}"
        yield from _undocumented(prop, f"{where}.{name}")
    for name, definition in node.get("$defs", {}).items():
        yield from _undocumented(definition, name)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems", "items", "additionalProperties"):
        if key in node:
            yield from _undocumented(node[key], f"{where}/{key}")


def test_every_property_has_a_description() -> None:
    schema = manifest_json_schema()
    missing = list(_undocumented(schema, "Team"))
    assert not missing, "properties without a description: " + ", ".join(missing)


def test_the_walk_reaches_nested_properties() -> None:
    bare = {"type": "string"}
    schema = {
        "properties": {"a": bare, "b": {"description": "ok", "items": {"properties": {"c": bare}}}},
        "$defs": {
            "D": {"properties": {"d": {"anyOf": [{"properties": {"e": bare}}, {"type": "null"}]}}},
            "E": {"additionalProperties": {"properties": {"f": bare}}},
        },
    }
    assert list(_undocumented(schema, "T")) == [
        "T.a",
        "T.b/items.c",
        "D.d",
        "D.d/anyOf[0].e",
        "E/additionalProperties.f",
    ]
