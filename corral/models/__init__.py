"""Chat models: the deterministic scripted model, its scripts, prices, model resolution."""

from corral.models._derive import derive_value
from corral.models._prices import price
from corral.models._resolve import model_label, model_problems, resolve_model
from corral.models._script import Reply, Script
from corral.models._scripted import ScriptedChatModel, count_tokens

__all__ = [
    "Reply",
    "Script",
    "ScriptedChatModel",
    "count_tokens",
    "derive_value",
    "model_label",
    "model_problems",
    "price",
    "resolve_model",
]
