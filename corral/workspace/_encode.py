"""What the savers store and ask, whatever the backend: a step's rows and writes, encoded
once, and the query of ``list``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

WriteRow = tuple[str, str, str, str, int, str, str, bytes | None, str]
"""``(thread, ns, checkpoint id, task id, idx, channel, type, blob, task path)``."""
Rows = list[WriteRow]  # (inside a saver, ``list`` names the method)


@dataclass(frozen=True, slots=True)
class Writes:
    """A task's writes ready to store: their checkpoint's address and rows."""

    thread_id: str
    ns: str
    checkpoint_id: str
    rows: Rows
    ends_step: bool
    """They include a special channel (an error, an interrupt): commit them at once."""


def encode_writes(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> Writes:
    """The rows of a task's ``writes`` to the checkpoint ``config`` names."""
    conf = config["configurable"]
    thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
    checkpoint_id = str(conf["checkpoint_id"])
    rows: Rows = [
        (
            thread_id,
            ns,
            checkpoint_id,
            task_id,
            WRITES_IDX_MAP.get(channel, idx),
            channel,
            *serde.dumps_typed(value),
            task_path,
        )
        for idx, (channel, value) in enumerate(writes)
    ]
    ends_step = any(channel in WRITES_IDX_MAP for channel, _ in writes)
    return Writes(thread_id, ns, checkpoint_id, rows, ends_step)


@dataclass(frozen=True, slots=True)
class Step:
    """A checkpoint ready to store: its run namespace, new blobs and checkpoint row."""

    thread_id: str
    ns: str
    blobs: list[tuple[Any, ...]]
    """``(thread, ns, channel, version, type, blob)`` for each new channel version."""
    row: tuple[Any, ...]
    """``(thread, ns, id, parent id, run id, type, checkpoint, type, metadata)``."""
    meta: dict[str, Any]

    @property
    def config(self) -> RunnableConfig:
        """The config ``put`` returns: the stored checkpoint's address."""
        return {
            "configurable": {
                "thread_id": self.thread_id,
                "checkpoint_ns": self.ns,
                "checkpoint_id": self.row[2],
            }
        }


def encode_step(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> Step:
    """The rows ``put`` writes: each new channel value as its own blob, the checkpoint
    without its values, and its metadata. Readers take a version with no row as empty,
    as LangGraph's savers take their ``empty`` rows."""
    conf = config["configurable"]
    thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
    stored: dict[str, Any] = dict(checkpoint)
    values: dict[str, Any] = stored.pop("channel_values")
    blobs = [  # a version with no value (a consumed trigger, a delta channel) is no row
        (thread_id, ns, channel, str(version), *serde.dumps_typed(values[channel]))
        for channel, version in new_versions.items()
        if channel in values
    ]
    meta = dict(get_checkpoint_metadata(config, metadata))
    run_id = meta.get("run_id")
    row = (
        thread_id,
        ns,
        checkpoint["id"],
        conf.get("checkpoint_id"),
        str(run_id) if run_id is not None else None,
        *serde.dumps_typed(stored),
        *serde.dumps_typed(meta),
    )
    return Step(thread_id, ns, blobs, row, meta)


def listing(
    config: RunnableConfig | None,
    before: RunnableConfig | None,
    filter: dict[str, Any] | None,
    mark: str,
    table: str = "",
) -> tuple[str, list[Any], dict[str, Any] | None]:
    """What a saver's ``list`` asks, whatever the backend: its ``WHERE ... ORDER BY``
    (columns prefixed ``table``, parameters written ``mark``), the parameters, and the
    metadata filter as stored (LangGraph strips NUL from stored metadata strings)."""
    where: list[str] = []
    params: list[Any] = []
    if config is not None:
        conf = config["configurable"]
        where.append(f"{table}thread_id = {mark}")
        params.append(str(conf["thread_id"]))
        if conf.get("checkpoint_ns") is not None:
            where.append(f"{table}checkpoint_ns = {mark}")
            params.append(str(conf["checkpoint_ns"]))
        if checkpoint_id := get_checkpoint_id(config):
            where.append(f"{table}checkpoint_id = {mark}")
            params.append(checkpoint_id)
    if before is not None and (before_id := get_checkpoint_id(before)):
        where.append(f"{table}checkpoint_id < {mark}")
        params.append(before_id)
    sql = (" WHERE " + " AND ".join(where) if where else "") + (
        f" ORDER BY {table}thread_id, {table}checkpoint_ns, {table}checkpoint_id DESC"
    )
    if filter:
        filter = {k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in filter.items()}
    return sql, params, filter
