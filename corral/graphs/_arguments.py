"""The checks of ``App``'s own arguments (``team.compile(...)``): a wrong type is an
``InputError`` naming the argument, before the workspace is opened."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import TracerProvider

from corral.errors import InputError
from corral.observability import Metrics


def check_arguments(**given: Any) -> None:
    """Raise ``InputError`` for the first of ``App``'s arguments of the wrong type
    (``None`` stands for the default of each but ``clock``)."""
    for name, value in given.items():
        wanted, fits = _WANTED[name]
        if (value is not None or name == "clock") and not fits(value):
            optional = "" if name == "clock" else " (or None)"
            raise InputError(
                f"{name} must be {wanted}{optional}, not {type(value).__name__} {value!r:.60}",
                field=name,
            )


_WANTED: dict[str, tuple[str, Any]] = {
    "db": ("a file path or a postgresql:// URL", lambda v: isinstance(v, str | os.PathLike)),
    "chat_models": ("a mapping of model name to chat model", lambda v: isinstance(v, Mapping)),
    "on_budget_alert": (
        "a plain function taking one Alert (an async one would never be awaited)",
        lambda v: callable(v) and not awaitable(v),
    ),
    "clock": ("a function returning the time in seconds since the epoch", callable),
    "metrics": ("a corral Metrics", lambda v: isinstance(v, Metrics)),
    "tracer_provider": (
        "an OpenTelemetry TracerProvider",
        lambda v: isinstance(v, TracerProvider),
    ),
    "max_running": (
        "a whole number of at least 1",
        lambda v: type(v) is int and v >= 1,
    ),
}


def awaitable(hook: Any) -> bool:
    """An ``async def`` function, or an object whose class's ``__call__`` is one (asked
    of callables only: their type has a ``__call__``)."""
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(type(hook).__call__)
