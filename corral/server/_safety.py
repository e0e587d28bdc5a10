"""Who may call, and how much they may send: bearer API keys limited to named teams, a
request body size limit, and errors as JSON (never a traceback)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.errors import CorralError, InputError, PermissionDenied, UserError

Keys = Mapping[str, frozenset[str] | None]
"""API key -> the teams it may use (``None``: every team)."""

OPEN = frozenset({"/ok"})
"""Paths that need no key (health checks)."""


class ErrorBody(BaseModel):
    """An error: what to change (``detail``; for bad input, the fields, each with its
    ``loc``), and corral's error type and field when a corral check refused it."""

    detail: str | list[dict[str, Any]]
    error: str | None = None
    field: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (401, "No valid API key"),
        (403, "The key or the caller may not do this"),
        (404, "Not found (or not the key's team)"),
        (409, "Conflicts with the thread's or run's state"),
        (411, "A body without Content-Length"),
        (413, "The body is over the size limit"),
        (422, "Bad input, with the fields"),
    )
}
"""The errors any route may answer, documented in the OpenAPI document."""


def read_api_keys(text: str) -> dict[str, frozenset[str] | None]:
    """Keys from text: one a line (or ``;``-separated), ``KEY`` for every team or
    ``KEY team,team`` for those teams; ``#`` starts a comment.

    Raises:
        InputError: a line that is not ``KEY [teams]``, or no key at all.
    """
    keys: dict[str, frozenset[str] | None] = {}
    for number, raw in enumerate(text.replace(";", "\n").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) > 2 or len(parts[0]) < 16:
            raise InputError(
                f"API key line {number}: write 'KEY' or 'KEY team,team' "
                "(a key is at least 16 characters)",
                field="api_keys",
            )
        teams = frozenset(t for t in parts[1].split(",") if t) if len(parts) == 2 else None
        keys[parts[0]] = teams
    if not keys:
        raise InputError("no API key given (one a line: 'KEY' or 'KEY team,team')")
    return keys


def caller_teams(request: Request, keys: Keys | None) -> frozenset[str] | None:
    """The teams the request's bearer key may use (``None``: all); 401 without a valid
    key when keys are set."""
    if keys is None:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        for key, teams in keys.items():
            if hmac.compare_digest(key.encode(), token.strip().encode()):
                return teams
    raise HTTPException(
        401,
        detail="send a valid API key: Authorization: Bearer KEY",
        headers={"WWW-Authenticate": "Bearer"},
    )


class BodyLimit:
    """Refuses a request body over ``limit`` bytes (413) and one of unknown length (411)
    before the app reads it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            status, detail = 0, ""
            if length is None and headers.get(b"transfer-encoding"):
                status, detail = 411, "send a Content-Length"
            elif length is not None and (not length.isdigit() or int(length) > self.limit):
                status, detail = 413, f"the request body is over {self.limit} bytes"
            if status:
                await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def error_handlers(server: FastAPI) -> None:
    """Errors as JSON with what to change; never a traceback."""

    @server.exception_handler(UserError)
    async def user_error(_: Request, exc: Exception) -> JSONResponse:
        field = getattr(exc, "field", None)
        body = {"detail": str(exc), "error": type(exc).__name__, "field": field}
        return JSONResponse(body, status_code=422)

    @server.exception_handler(PermissionDenied)
    async def denied(_: Request, exc: Exception) -> JSONResponse:
        body = {"detail": str(exc), "error": "PermissionDenied"}
        return JSONResponse(body, status_code=403)

    @server.exception_handler(CorralError)
    async def corral_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=409)

    @server.exception_handler(Exception)
    async def unexpected(_: Request, __: Exception) -> JSONResponse:
        body: dict[str, Any] = {
            "detail": "internal error; the server log has the details",
            "error": "internal",
        }
        return JSONResponse(body, status_code=500)
