"""Chat models: the deterministic scripted model, its scripts, and model resolution."""

from corral.models._derive import derive_value
from corral.models._resolve import resolve_model
from corral.models._script import Reply, Script, load_script
from corral.models._scripted import (
    AGENT_KEY,
    RUN_KEY,
    ScriptedChatModel,
    ScriptedProviderError,
    count_tokens,
)

__all__ = [
    "AGENT_KEY",
    "RUN_KEY",
    "Reply",
    "Script",
    "ScriptedChatModel",
    "ScriptedProviderError",
    "count_tokens",
    "derive_value",
    "load_script",
    "resolve_model",
]
