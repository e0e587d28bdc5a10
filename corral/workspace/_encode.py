"""What a checkpoint step stores, whatever the backend: its rows, encoded once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol


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
    without its values, and its metadata."""
    conf = config["configurable"]
    thread_id, ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
    stored: dict[str, Any] = dict(checkpoint)
    values: dict[str, Any] = stored.pop("channel_values")
    blobs = [
        (
            thread_id,
            ns,
            channel,
            str(version),
            *(serde.dumps_typed(values[channel]) if channel in values else ("empty", None)),
        )
        for channel, version in new_versions.items()
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
