"""Derive a schema-valid value from a JSON Schema and an input payload, deterministically.

Fields named like a field of the input take the input's value when it fits; an
enum takes the choice that the input mentions, else one picked by a stable hash;
text reads like a value of its field (``_phrases``); everything stays within the
schema's bounds. The same schema and input always give the same value.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from corral.models._phrases import phrase, strings

_FENCE = re.compile(r"```json\s*\n(.*?)\n```", re.DOTALL)
_MONEY_NAME = re.compile(r"usd|eur|gbp|amount|price|cost|refund|fee|total", re.IGNORECASE)
_MONEY = re.compile(r"(?:[$€£]\s?)(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s?(?:usd|eur|gbp|dollars)")


def find_payload(messages: list[BaseMessage]) -> dict[str, Any]:
    """The JSON object of the last human message (corral prompts fence it), else ``{}``."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage) and isinstance(message.content, str):
            for block in _FENCE.findall(message.content):
                try:
                    found = json.loads(block)
                except json.JSONDecodeError:
                    continue
                if isinstance(found, dict):
                    return found
    return {}


def derive_value(schema: dict[str, Any], source: dict[str, Any]) -> Any:
    """A value valid for ``schema`` (a JSON Schema object), derived from ``source``."""
    seed = json.dumps(source, sort_keys=True, default=str)
    return _Deriver(schema.get("$defs", {}), source, seed).value(schema, "value", None)


def _stable(seed: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}|{seed}".encode()).digest()[:8], "big")


class _Deriver:
    def __init__(self, defs: dict[str, Any], source: dict[str, Any], seed: str) -> None:
        self.defs = defs
        self.source = source
        self.seed = seed
        self.text = " ".join(str(v) for v in strings(source)).lower()

    def value(self, schema: dict[str, Any], name: str, given: Any) -> Any:
        schema = self._deref(schema)
        if "anyOf" in schema:
            options = [self._deref(s) for s in schema["anyOf"] if s.get("type") != "null"]
            return self.value(options[0], name, given) if options else None
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._choice(schema["enum"], name, given)
        kind = schema.get("type")
        if kind == "object":
            return self._object(schema, given)
        if kind == "array":
            return self._array(schema, name, given)
        if kind in ("integer", "number"):
            return self._number(schema, name, given, integer=kind == "integer")
        if kind == "boolean":
            return given if isinstance(given, bool) else _stable(self.seed, name) % 2 == 0
        return self._string(schema, name, given)

    def _deref(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.defs[schema["$ref"].rsplit("/", 1)[-1]]
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self._deref(schema["allOf"][0])
        return schema

    def _object(self, schema: dict[str, Any], given: Any) -> dict[str, Any]:
        values = given if isinstance(given, dict) else self.source
        return {
            key: self.value(sub, key, values.get(key))
            for key, sub in schema.get("properties", {}).items()
        }

    def _array(self, schema: dict[str, Any], name: str, given: Any) -> list[Any]:
        items = schema.get("items", {})
        if isinstance(given, list):
            out = [self.value(items, name, g) for g in given]
        else:
            out = [self.value(items, f"{name}[0]", None)]
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        while len(out) < low:
            out.append(self.value(items, f"{name}[{len(out)}]", None))
        return out[:high] if high is not None else out

    def _choice(self, choices: list[Any], name: str, given: Any) -> Any:
        if given in choices:
            return given
        mentioned = [
            c
            for c in choices
            if isinstance(c, str) and re.search(rf"\b{re.escape(c.lower())}\b", self.text)
        ]
        if mentioned:
            return mentioned[0]
        return choices[_stable(self.seed, name) % len(choices)]

    def _number(self, schema: dict[str, Any], name: str, given: Any, *, integer: bool) -> Any:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 100))
        found = _MONEY.findall(self.text) if _MONEY_NAME.search(name) else []
        amounts = [a or b for a, b in found]
        if isinstance(given, int | float) and not isinstance(given, bool):
            value = float(given)
        elif amounts:  # a money field takes the first amount the input mentions
            value = float(amounts[0])
        else:
            value = low + (_stable(self.seed, name) % 1000) / 1000 * (high - low)
        step = 1 if integer else 0.01
        value = min(
            max(value, low + step if "exclusiveMinimum" in schema else low),
            high - step if "exclusiveMaximum" in schema else high,
        )
        return int(value) if integer else round(value, 2)

    def _string(self, schema: dict[str, Any], name: str, given: Any) -> str:
        pattern = schema.get("pattern")
        if isinstance(given, str) and (pattern is None or re.search(pattern, given)):
            text = given
        else:
            text = phrase(name, self.source)
            if pattern is not None and not re.search(pattern, text):
                raise ValueError(
                    f"the scripted model cannot derive a value for {name!r} matching "
                    f"pattern {pattern!r}; give this agent a scripted `output` reply"
                )
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        if len(text) < low:
            text = text + "." * (low - len(text))
        return text[:high] if high is not None else text
