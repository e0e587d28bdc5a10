"""Turn a ``ModelSpec`` into a chat model: scripted, or through LangChain's own resolver."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import ValidationError

from corral.compat import (
    chat_model_class,
    chat_provider,
    chat_providers,
    load_chat_provider,
    tracing_params,
)
from corral.errors import ManifestError, Problem, SDKRetriesWarning, suggest
from corral.models._script import Script
from corral.models._scripted import ScriptedChatModel

Loc = tuple[str | int, ...]
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${NAME}`` in a model param: the environment variable ``NAME``."""


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

    kwargs = {**_no_sdk_retries(use, params), **expand_env(params)}
    try:
        model: Any = init_chat_model(use, **kwargs)
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
    """Warn once for each model given in Python whose SDK retries on its own."""
    for name, model in models.items():
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


def env_refs(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every ``${NAME}`` in a JSON-like value, with where it is."""
    if isinstance(value, str):
        for match in ENV_REF.finditer(value):
            yield loc, match.group(1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from env_refs(item, (*loc, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from env_refs(item, (*loc, i))


def expand_env(value: Any) -> Any:
    """``value`` with each ``${NAME}`` replaced by the environment variable ``NAME``
    (``KeyError`` if it is unset). The result is handed to the model, never stored."""
    if isinstance(value, str):
        return ENV_REF.sub(lambda m: os.environ[m.group(1)], value)
    if isinstance(value, Mapping):
        return {key: expand_env(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [expand_env(item) for item in value]
    return value
