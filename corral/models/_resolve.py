"""Turn a ``ModelSpec`` into a chat model: scripted, or through LangChain's own resolver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

from corral.compat import tracing_params
from corral.errors import ManifestError, Problem
from corral.models._script import Script
from corral.models._scripted import ScriptedChatModel


def resolve_model(
    name: str, use: str, params: Mapping[str, Any], script: Script | None = None
) -> BaseChatModel:
    """Build the chat model ``use`` (``scripted`` or ``provider:model``) with ``params``.

    ``ManifestError`` names the model on failure.

    ``provider:model`` strings go to ``langchain.chat_models.init_chat_model`` (the
    ``providers`` extra plus the provider's package, e.g. ``langchain-openai``).
    """
    if use == "scripted":
        return ScriptedChatModel(script=script or Script(), **params)
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise ManifestError(
            [
                Problem(
                    f"model {name!r} ({use}) needs LangChain's model resolver",
                    "pip install 'corral[providers]' and the provider's package "
                    "(for example langchain-openai), or use 'scripted'",
                    ("models", name),
                )
            ]
        ) from None
    try:
        model: Any = init_chat_model(use, **params)
    except Exception as exc:  # provider packages raise many kinds (ImportError, ValueError)
        raise ManifestError(
            [
                Problem(
                    f"model {name!r} ({use}) cannot be created: {exc}",
                    "install the provider's package and set its API key, or use 'scripted'",
                    ("models", name),
                )
            ]
        ) from None
    if not isinstance(model, BaseChatModel):
        raise ManifestError(
            [
                Problem(
                    f"model {name!r} ({use}) is not a chat model",
                    "use a chat model",
                    ("models", name),
                )
            ]
        )
    return model


def model_label(model: BaseChatModel, declared: str) -> str:
    """``provider:model`` for pricing: from the model's own tracing parameters if it
    reports them (LangChain's ``ls_provider``/``ls_model_name``), else as declared."""
    if isinstance(model, ScriptedChatModel):
        return "scripted"
    params = tracing_params(model)
    provider, name = params.get("ls_provider"), params.get("ls_model_name")
    return f"{provider}:{name}" if provider and name else declared
