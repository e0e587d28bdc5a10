"""Run ids and where a team's workspace lives."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.runnables import RunnableConfig

from corral.errors import InputError
from corral.graphs._arguments import awaitable
from corral.manifest import TeamPlan
from corral.workspace import DEFAULT_DB, postgres_url

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def check_run_id(run_id: str) -> str:
    """``run_id`` if well formed, else ``InputError`` saying what is allowed."""
    if not isinstance(run_id, str):
        raise InputError(f"run id must be a string, not {type(run_id).__name__}", field="run_id")
    if not _RUN_ID.fullmatch(run_id):
        raise InputError(
            f"run id {run_id[:60]!r} is not allowed: use 1-128 letters, digits, "
            "'.', '_', ':' or '-', starting with a letter or digit",
            field="run_id",
        )
    return run_id


_OWN_KEYS = ("thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map")
"""The keys of ``configurable`` that say which run and checkpoint a run is."""


def check_config(config: RunnableConfig | None, on_step: object = None) -> None:
    """Refuse extra config that is not a LangChain config (a key of the wrong type, which
    would fail deep inside the run once it is registered), or that would move a run to
    another thread or checkpoint (its checkpoints written apart from its record): the run
    id says which run it is. And an ``on_step`` that is not a plain callable: an async
    one's coroutine would never be awaited, so it would never run."""
    if on_step is not None and (not callable(on_step) or awaitable(on_step)):
        kind = "an async function" if callable(on_step) else f"a {type(on_step).__name__}"
        raise InputError(
            f"on_step must be a plain function called with each StepEvent, not {kind} "
            "(it is called between steps, never awaited)",
            field="on_step",
        )
    if config is None:
        return
    if not isinstance(config, Mapping):
        raise InputError(
            f"config must be a dict (a LangChain RunnableConfig), not {type(config).__name__}",
            field="config",
        )
    if "recursion_limit" in config:  # else the run halts saying it passed max_steps
        raise InputError(
            "config's 'recursion_limit' is the team's: set guards.max_steps instead",
            field="config.recursion_limit",
        )
    for key, value in config.items():
        fits, says = _SHAPES.get(key, (None, ""))
        if value is not None and fits is not None and not fits(value):
            raise InputError(
                f"config's {key!r} cannot be a {type(value).__name__}: {says}",
                field=f"config.{key}",
            )
    given = [k for k in _OWN_KEYS if k in (config.get("configurable") or {})]
    if given:
        raise InputError(
            f"config's configurable {given[0]!r} is the run's own: give the run id as "
            "run_id=, and leave the thread and checkpoint keys out of config",
            field="config",
        )


_SHAPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "tags": (
        lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v),
        "give a list of strings",
    ),
    "metadata": (lambda v: isinstance(v, Mapping), "give a dict"),
    "configurable": (lambda v: isinstance(v, Mapping), "give a dict"),
    "callbacks": (
        lambda v: isinstance(v, list | BaseCallbackManager),
        "give a list of callback handlers or a callback manager",
    ),
    "max_concurrency": (
        lambda v: type(v) is int and v >= 1,
        "give a whole number of at least 1",
    ),
}
"""Each LangChain config key checked: its test, and what to give instead."""


def new_run_id() -> str:
    """A fresh, time-ordered run id."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"


def db_path(plan: TeamPlan, db: str | Path | None) -> Path | str:
    """The workspace: ``db`` if given, else the manifest's ``checkpoint.db`` (a file next
    to the manifest), else ``.corral/corral.db``. A Postgres URL stays a URL (``str``)."""
    for given in (db, plan.checkpoint.db):
        if given is not None and (url := postgres_url(given)) is not None:
            return url
    if db is not None:
        return Path(db)
    if plan.checkpoint.db is not None:
        base = plan.source.parent if plan.source is not None else Path.cwd()
        return base / plan.checkpoint.db
    return DEFAULT_DB
