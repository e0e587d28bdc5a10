"""Turn a ``ModelSpec`` into a chat model: scripted, or through LangChain's own resolver."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from corral.errors import ManifestError, Problem
from corral.manifest._spec import ModelSpec
from corral.models._script import Script
from corral.models._scripted import ScriptedChatModel


def resolve_model(name: str, spec: ModelSpec, script: Script | None) -> BaseChatModel:
    """Build the chat model for ``spec``; ``ManifestError`` names the model on failure.

    ``provider:model`` strings go to ``langchain.chat_models.init_chat_model`` (the
    ``providers`` extra plus the provider's package, e.g. ``langchain-openai``).
    """
    if spec.use == "scripted":
        return ScriptedChatModel(script=script or Script(), **spec.params)
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise ManifestError(
            [
                Problem(
                    f"model {name!r} ({spec.use}) needs LangChain's model resolver",
                    "pip install 'corral[providers]' and the provider's package "
                    "(for example langchain-openai), or use 'scripted'",
                    ("models", name),
                )
            ]
        ) from None
    try:
        model: Any = init_chat_model(spec.use, **spec.params)
    except Exception as exc:  # provider packages raise many kinds (ImportError, ValueError)
        raise ManifestError(
            [
                Problem(
                    f"model {name!r} ({spec.use}) cannot be created: {exc}",
                    "install the provider's package and set its API key, or use 'scripted'",
                    ("models", name),
                )
            ]
        ) from None
    if not isinstance(model, BaseChatModel):
        raise ManifestError(
            [
                Problem(
                    f"model {name!r} ({spec.use}) is not a chat model",
                    "use a chat model",
                    ("models", name),
                )
            ]
        )
    return model
