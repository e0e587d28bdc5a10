"""What building a chat model would refuse, found without building one: a team file is
checked without loading LangChain's chat models (they load for a provider's model, or
a scripted model given params)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from corral.errors import Problem, suggest

Loc = tuple[str | int, ...]
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${NAME}`` in a model param: the environment variable ``NAME``."""


def shown(name: str, use: str) -> str:
    """How a problem names model ``name`` (and what it uses, if that differs)."""
    return f"model {name!r}" + (f" ({use})" if use != name else "")


def model_problems(name: str, use: str, params: Mapping[str, Any], loc: Loc) -> list[Problem]:
    """What building model ``name`` (``use`` with ``params``) would refuse before any call,
    located at ``loc``: LangChain's resolver missing, a provider it does not know, or the
    provider's package missing; for ``scripted``, params it does not take. No provider's
    model is built."""
    if use == "scripted":
        return _scripted_problems(name, params)
    from corral.compat import chat_provider, chat_providers, load_chat_provider

    providers = chat_providers()
    if providers is None:
        return [
            Problem(
                f"{shown(name, use)} needs LangChain's model resolver",
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
                f"{shown(name, use)} names provider {unknown!r}, which LangChain does not know",
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
                f"{shown(name, use)} needs the package {package}, which is not installed",
                f"pip install {package}",
                loc,
            )
        ]
    return []


def _scripted_problems(name: str, params: Mapping[str, Any]) -> list[Problem]:
    loc: Loc = ("models", name, "params")
    if "script" in params:
        return [Problem(f"model {name!r} sets `script` in params", "use its `script:`", loc)]
    if not params:
        return []
    from corral.models._scripted import ScriptedChatModel

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
