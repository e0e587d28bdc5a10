"""Which model errors are worth retrying, and how long to wait first.

Transient: rate limits (429), request timeouts (408), conflicts (409), server errors
(5xx), timeouts and dropped connections. Everything else (a bad request, a missing
key, a bug) is not retried: retrying it only burns time and money. Status codes are
read from the exception or its ``response``, so real provider errors (openai,
anthropic, httpx, requests) are classified without importing their SDKs. LangGraph's
default predicate retries unknown 4xx errors and is not used.
"""

from __future__ import annotations

import random
from typing import Any

from corral.manifest import RetrySpec

_TRANSIENT_STATUS = {408, 409, 425, 429}
_TRANSIENT_NAMES = (
    "Timeout",
    "ConnectError",
    "ConnectionError",
    "RemoteProtocolError",
    "ReadError",
    "WriteError",
    "ServiceUnavailable",
    "Overloaded",
    "RateLimit",
    "InternalServerError",
    "APIConnectionError",
)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an error carries, if any."""
    for source in (exc, getattr(exc, "response", None)):
        code = getattr(source, "status_code", None) or getattr(source, "status", None)
        if isinstance(code, int):
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    """True for errors that may well succeed if the call is made again."""
    status = status_of(exc)
    if status is not None:
        return status in _TRANSIENT_STATUS or 500 <= status < 600
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    names = [c.__name__ for c in type(exc).__mro__]
    return any(marker in name for name in names for marker in _TRANSIENT_NAMES)


def retry_after(exc: BaseException) -> float | None:
    """Seconds a provider asked to wait (``Retry-After``), if it said."""
    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = getattr(exc, "retry_after", None) or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def backoff(
    spec: RetrySpec, attempt: int, exc: BaseException, rng: random.Random | None = None
) -> float:
    """The wait before retry number ``attempt`` (1 = the first retry)."""
    wait = min(spec.max_interval, spec.initial_interval * spec.backoff_factor ** (attempt - 1))
    if spec.jitter:
        wait += (rng or random).uniform(0, wait / 2)
    asked = retry_after(exc)
    return min(spec.max_interval, max(wait, asked)) if asked is not None else wait
