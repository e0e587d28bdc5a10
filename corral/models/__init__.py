"""Chat models: the deterministic scripted model, its scripts, prices, model resolution.

Names are imported when first used (PEP 562), so checking a team file does not load
LangChain's chat models or the price data unless the team needs them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral._lazy import lazy_exports

if TYPE_CHECKING:
    from corral.models._derive import derive_value
    from corral.models._prices import Price, price, price_known
    from corral.models._problems import env_refs, model_problems
    from corral.models._resolve import model_label, resolve_model, sdk_retries, warn_sdk_retries
    from corral.models._script import Reply, Script
    from corral.models._scripted import ScriptedChatModel, count_tokens

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "._derive": ("derive_value",),
        "._prices": ("Price", "price", "price_known"),
        "._problems": ("env_refs", "model_problems"),
        "._resolve": ("model_label", "resolve_model", "sdk_retries", "warn_sdk_retries"),
        "._script": ("Reply", "Script"),
        "._scripted": ("ScriptedChatModel", "count_tokens"),
    },
)

__all__ = [
    "Price",
    "Reply",
    "Script",
    "ScriptedChatModel",
    "count_tokens",
    "derive_value",
    "env_refs",
    "model_label",
    "model_problems",
    "price",
    "price_known",
    "resolve_model",
    "sdk_retries",
    "warn_sdk_retries",
]
