"""Refuse checkpoint blobs that would construct types outside an allowlist.

LangGraph's strict msgpack mode blocks such types but returns their raw arguments
in their place, silently. Corral scans a blob first and refuses it with an error
naming the types, so a tampered checkpoint is never half-loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ormsgpack

from corral.compat import SAFE_MSGPACK_METHODS, SAFE_MSGPACK_TYPES

_CONSTRUCTORS = {0, 1, 2, 4, 5}  # single arg, positional, keyword, pydantic v1, v2
_METHOD = 3
_DELTA_SNAPSHOT = 7


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
