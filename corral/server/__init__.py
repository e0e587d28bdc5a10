"""``corral serve``: teams over HTTP with LangGraph's Agent Server API (``langgraph-sdk``,
``RemoteGraph``), plus corral's health and metrics routes. Needs ``corral[server]``."""

from corral.server._app import create_app
from corral.server._safety import read_api_keys

__all__ = ["create_app", "read_api_keys"]
