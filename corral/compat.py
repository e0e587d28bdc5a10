"""The private LangGraph and LangChain names corral relies on, behind one adapter.

Every use of a private API goes through here, so a LangGraph or langchain-core upgrade
that moves one breaks in one place, and ``tests/test_compat.py`` says which name moved.
langgraph is pinned below 2.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

# The config keys through which LangGraph lends a checkpointer and a durability mode to
# graphs run inside a node.
from langgraph._internal._constants import CONFIG_KEY_CHECKPOINTER, CONFIG_KEY_DURABILITY

# LangGraph's own list of the types that are safe to rebuild from checkpoint blobs.
from langgraph.checkpoint.serde._msgpack import SAFE_MSGPACK_METHODS, SAFE_MSGPACK_TYPES

__all__ = [
    "CONFIG_KEY_CHECKPOINTER",
    "CONFIG_KEY_DURABILITY",
    "SAFE_MSGPACK_METHODS",
    "SAFE_MSGPACK_TYPES",
    "lend",
    "tracing_params",
]


def lend(checkpointer: Any, durability: str) -> dict[str, Any]:
    """The ``configurable`` entries that make a nested graph use ``checkpointer`` and
    ``durability`` instead of the ones its parent would lend it."""
    return {CONFIG_KEY_CHECKPOINTER: checkpointer, CONFIG_KEY_DURABILITY: durability}


def tracing_params(model: BaseChatModel) -> dict[str, Any]:
    """A chat model's LangSmith tracing parameters (``ls_provider``, ``ls_model_name``);
    empty when the model does not report them."""
    try:
        return dict(model._get_ls_params())
    except Exception:  # not every chat model implements it
        return {}
