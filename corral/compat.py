"""The private LangGraph and LangChain names corral relies on, behind one adapter.

Every use of a private API goes through here, so a LangGraph, langchain-core or langchain
upgrade that moves one breaks in one place, and ``tests/test_compat.py`` says which name
moved. langgraph and langchain are pinned below 2; langchain (the ``providers`` extra) is
optional, so its names are looked up only when asked for.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

# The config keys through which LangGraph lends a checkpointer and a durability mode to
# graphs run inside a node.
from langgraph._internal._constants import CONFIG_KEY_CHECKPOINTER, CONFIG_KEY_DURABILITY

# LangGraph's own list of the types that are safe to rebuild from checkpoint blobs.
from langgraph.checkpoint.serde._msgpack import SAFE_MSGPACK_METHODS, SAFE_MSGPACK_TYPES

# How LangGraph names a step's tasks (checkpoint format v2 and later, and v1), so a trace
# can tell which task wrote what without replaying the graph.
from langgraph.pregel._algo import _uuid5_str as task_id_v1
from langgraph.pregel._algo import _xxhash_str as task_id

__all__ = [
    "CONFIG_KEY_CHECKPOINTER",
    "CONFIG_KEY_DURABILITY",
    "SAFE_MSGPACK_METHODS",
    "SAFE_MSGPACK_TYPES",
    "chat_provider",
    "chat_providers",
    "lend",
    "load_chat_provider",
    "task_id",
    "task_id_v1",
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


def chat_providers() -> dict[str, str] | None:
    """The providers LangChain's ``init_chat_model`` knows, each with the module of its
    chat model class; ``None`` when langchain is not installed."""
    try:
        from langchain.chat_models import base
    except ImportError:
        return None
    return {name: entry[0] for name, entry in base._BUILTIN_PROVIDERS.items()}


def chat_provider(model: str, provider: str | None) -> str | None:
    """The provider ``init_chat_model(model, model_provider=provider)`` would use (the
    model's known prefix, else one inferred from its name); ``None`` if it cannot tell."""
    from langchain.chat_models import base

    try:
        return str(base._parse_model(model, provider)[1])
    except ValueError:
        return None


def load_chat_provider(provider: str) -> None:
    """Import a known provider's chat model class as ``init_chat_model`` does, building
    no model; ``ImportError`` when its integration package is missing."""
    from langchain.chat_models import base

    base._get_chat_model_creator(provider)


def chat_model_class(provider: str) -> type[Any] | None:
    """The chat model class ``init_chat_model`` builds for a known provider; ``None`` if
    LangChain does not say (its creator is a ``partial`` holding ``cls``)."""
    from langchain.chat_models import base

    creator = base._get_chat_model_creator(provider)
    found = getattr(creator, "keywords", {}).get("cls")
    return found if isinstance(found, type) else None
