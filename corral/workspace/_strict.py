"""Refuse checkpoint blobs that would construct types outside an allowlist.

LangGraph's strict msgpack mode blocks such types but returns their raw arguments
in their place, silently. Corral scans a blob first and refuses it with an error
naming the types, so a tampered checkpoint is never half-loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import ormsgpack
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from corral.compat import SAFE_MSGPACK_METHODS, SAFE_MSGPACK_TYPES
from corral.errors import CheckpointError

_CONSTRUCTORS = {0, 1, 2, 4, 5}  # single arg, positional, keyword, pydantic v1, v2
_METHOD = 3
_DELTA_SNAPSHOT = 7
_EXT_MARKERS = re.compile(rb"[\xc7-\xc9\xd4-\xd8]")
"""The msgpack markers of extension types. A blob without any of these bytes builds no
type at all, so it needs no scan (the bytes also occur inside strings and numbers;
then the blob is scanned)."""


def allowed_types(extra: Iterable[tuple[str, ...]] | None) -> frozenset[tuple[str, ...]]:
    """LangGraph's safe types plus ``extra``."""
    return SAFE_MSGPACK_TYPES | frozenset(tuple(t) for t in extra or ())


def blocked_types(payload: bytes, allowed: frozenset[tuple[str, ...]]) -> list[str]:
    """The dotted names of the types ``payload`` would build that are not ``allowed``."""
    blocked: list[str] = []

    def hook(code: int, data: bytes) -> Any:
        if code in _CONSTRUCTORS or code == _METHOD:
            parts = ormsgpack.unpackb(data, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)
            module, name = str(parts[0]), str(parts[1])
            if code == _METHOD:
                if (module, name, str(parts[3])) not in SAFE_MSGPACK_METHODS:
                    blocked.append(f"{module}.{name}.{parts[3]}")
            elif (module, name) not in allowed:
                blocked.append(f"{module}.{name}")
        elif code == _DELTA_SNAPSHOT:
            ormsgpack.unpackb(data, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)
        else:
            blocked.append(f"msgpack extension {code}")
        return None

    ormsgpack.unpackb(payload, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)
    return blocked


def decode(
    serde: SerializerProtocol,
    allowed: frozenset[tuple[str, ...]],
    type_: str,
    blob: bytes | None,
    what: str,
) -> Any:
    """A stored value, refused with ``CheckpointError`` naming ``what`` if it does not
    decode or would construct a type outside ``allowed``."""
    try:
        if type_ == "msgpack" and blob and not _EXT_MARKERS.search(blob):
            if type(serde) is JsonPlusSerializer:  # what it would do: no type to build
                return ormsgpack.unpackb(blob, option=ormsgpack.OPT_NON_STR_KEYS)
        elif type_ == "msgpack" and blob and (blocked := blocked_types(blob, allowed)):
            raise ValueError(
                f"it would construct types that are not allowed: {', '.join(sorted(set(blocked)))}"
            )
        return serde.loads_typed((type_, blob or b""))
    except Exception as exc:  # any decoding failure means the row cannot be trusted
        raise CheckpointError(
            f"checkpoint data of {what} cannot be decoded: "
            f"{type(exc).__name__}: {exc}. It was not written by this version of "
            "corral or was altered; delete the run (`corral runs delete`) or restore "
            "the database from a backup"
        ) from None
