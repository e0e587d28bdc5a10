"""Turn a ``ModelSpec`` into a chat model: scripted, or through LangChain's own resolver."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

from corral.compat import chat_model_class, chat_provider, tracing_params
from corral.errors import InputError, ManifestError, Problem, SDKRetriesWarning
from corral.models._problems import Loc, expand_env, model_problems, shown
from corral.models._script import Script
from corral.models._scripted import ScriptedChatModel


def resolve_model(
    name: str,
    use: str,
    params: Mapping[str, Any],
    script: Script | None = None,
    *,
    loc: Loc | None = None,
) -> BaseChatModel:
    """Build the chat model ``use`` (``scripted`` or ``provider:model``) with ``params``.

    ``provider:model`` strings go to ``langchain.chat_models.init_chat_model`` (the
    ``providers`` extra plus the provider's package, e.g. ``langchain-openai``). On
    failure, ``ManifestError`` names the model, at ``loc`` (default ``models.NAME.use``).
    """
    where = loc if loc is not None else ("models", name, "use")
    problems = model_problems(name, use, params, where)
    if problems:
        raise ManifestError(problems)
    if use == "scripted":
        return ScriptedChatModel(script=script or Script(), **params)
    from langchain.chat_models import init_chat_model

    kwargs = {**_no_sdk_retries(use, params), **expand_env(params)}
    try:
        model: Any = init_chat_model(use, **kwargs)
    except Exception as exc:  # provider packages raise many kinds (ImportError, ValueError)
        raise ManifestError(
            [
                Problem(
                    f"{shown(name, use)} cannot be created: {str(exc).rstrip('.')}",
                    "check its params and set the provider's API key, or use 'scripted'",
                    where,
                )
            ]
        ) from None
    if not isinstance(model, BaseChatModel):
        raise ManifestError(
            [Problem(f"{shown(name, use)} is not a chat model", "use a chat model", where)]
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


def _no_sdk_retries(use: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``max_retries=0`` for a provider whose chat model takes it, unless ``params`` set
    it: corral retries, records and counts every failure itself (one retry layer)."""
    if "max_retries" in params:
        return {}
    asked = params.get("model_provider")
    provider = chat_provider(use, asked if isinstance(asked, str) else None)
    found = chat_model_class(provider) if provider is not None else None
    fields = getattr(found, "model_fields", {})
    return {"max_retries": 0} if "max_retries" in fields else {}


def sdk_retries(model: BaseChatModel) -> int:
    """How many times the model's SDK retries a failed call on its own: its
    ``max_retries``, or its client's default when it leaves that unset (0 if neither)."""
    for source in (model, getattr(model, "root_client", None), getattr(model, "_client", None)):
        found = getattr(source, "max_retries", None)
        if isinstance(found, int):
            return found
    return 0


def warn_sdk_retries(models: Mapping[str, BaseChatModel]) -> None:
    """Warn once for each model given in Python whose SDK retries on its own (and refuse
    a value that is no chat model, before it fails deep inside the build or a run)."""
    for name, model in models.items():
        if not isinstance(model, BaseChatModel):
            raise InputError(
                f"chat_models[{name!r}] must be a LangChain chat model (a BaseChatModel), "
                f"not {type(model).__name__}",
                field="chat_models",
            )
        times = sdk_retries(model)
        if times > 0:
            warnings.warn(
                f"chat model {name!r} ({type(model).__name__}) retries failed calls "
                f"{times} times inside its SDK, where corral's retries, events and breaker "
                "never see them; build it with max_retries=0 (or silence SDKRetriesWarning "
                "with warnings.filterwarnings)",
                SDKRetriesWarning,
                stacklevel=3,
            )
