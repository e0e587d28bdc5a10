"""Turn a ``ModelSpec`` into a chat model: scripted, or through LangChain's own resolver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import ValidationError

from corral.compat import chat_provider, chat_providers, load_chat_provider, tracing_params
from corral.errors import ManifestError, Problem, suggest
from corral.models._script import Script
from corral.models._scripted import ScriptedChatModel

Loc = tuple[str | int, ...]


def _shown(name: str, use: str) -> str:
    return f"model {name!r}" + (f" ({use})" if use != name else "")


def model_problems(name: str, use: str, params: Mapping[str, Any], loc: Loc) -> list[Problem]:
    """What building model ``name`` (``use`` with ``params``) would refuse before any call,
    located at ``loc``: LangChain's resolver missing, a provider it does not know, or the
    provider's package missing; for ``scripted``, params it does not take. No provider's
    model is built."""
    if use == "scripted":
        return _scripted_problems(name, params)
    providers = chat_providers()
    if providers is None:
        return [
            Problem(
                f"{_shown(name, use)} needs LangChain's model resolver",
                "pip install 'corral[providers]' and the provider's package "
                "(for example langchain-openai), or use 'scripted'",
                loc,
            )
        ]
    asked = params.get("model_provider")
    asked = asked if isinstance(asked, str) else None
    provider = chat_provider(use, asked)
    if provider is None or provider not in providers:
        unknown = provider or asked or use.partition(":")[0]
        return [
            Problem(
                f"{_shown(name, use)} names provider {unknown!r}, which LangChain does not know",
                f"write 'provider:model' with a provider LangChain supports; "
                f"{suggest(unknown, providers)}",
                loc,
            )
        ]
    try:
        load_chat_provider(provider)
    except ImportError:
        package = providers[provider].partition(".")[0].replace("_", "-")
        return [
            Problem(
                f"{_shown(name, use)} needs the package {package}, which is not installed",
                f"pip install {package}",
                loc,
            )
        ]
    return []


def _scripted_problems(name: str, params: Mapping[str, Any]) -> list[Problem]:
    loc: Loc = ("models", name, "params")
    if "script" in params:
        return [Problem(f"model {name!r} sets `script` in params", "use its `script:`", loc)]
    try:
        ScriptedChatModel(**params)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return [
            Problem(
                f"model {name!r} (scripted) has invalid params: {errors}",
                "give the scripted model's params their types (latency: seconds)",
                loc,
            )
        ]
    return []


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

    try:
        model: Any = init_chat_model(use, **params)
    except Exception as exc:  # provider packages raise many kinds (ImportError, ValueError)
        raise ManifestError(
            [
                Problem(
                    f"{_shown(name, use)} cannot be created: {str(exc).rstrip('.')}",
                    "check its params and set the provider's API key, or use 'scripted'",
                    where,
                )
            ]
        ) from None
    if not isinstance(model, BaseChatModel):
        raise ManifestError(
            [Problem(f"{_shown(name, use)} is not a chat model", "use a chat model", where)]
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
