"""Chat models: the deterministic scripted model, its scripts, prices, model resolution."""

from corral.models._derive import derive_value
from corral.models._prices import Price, price, price_known
from corral.models._resolve import (
    env_refs,
    model_label,
    model_problems,
    resolve_model,
    sdk_retries,
    warn_sdk_retries,
)
from corral.models._script import Reply, Script
from corral.models._scripted import ScriptedChatModel, count_tokens

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
