"""The private LangGraph and LangChain names corral uses (all in ``corral.compat``) still
mean what corral takes them to mean. A failure here names the API an upgrade moved."""

from __future__ import annotations

import operator
import sys
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from corral import ScriptedChatModel, compat


def test_safe_msgpack_types_are_langgraphs_list_of_type_paths() -> None:
    assert ("langgraph.types", "Send") in compat.SAFE_MSGPACK_TYPES
    assert all(
        isinstance(t, tuple) and all(isinstance(p, str) for p in t)
        for t in compat.SAFE_MSGPACK_TYPES
    )
    assert all(len(m) == 3 for m in compat.SAFE_MSGPACK_METHODS)


def test_langchains_chat_providers_and_how_it_picks_one(monkeypatch: pytest.MonkeyPatch) -> None:
    providers = compat.chat_providers()  # langchain is a dev dependency: never None here
    assert providers is not None
    assert providers["openai"] == "langchain_openai"
    assert providers["anthropic"] == "langchain_anthropic"
    assert compat.chat_provider("openai:gpt-4o", None) == "openai"
    assert compat.chat_provider("gpt-4o:latest", None) == "openai"  # inferred from the name
    assert compat.chat_provider("nosuchprovider:model-x", None) is None
    assert compat.chat_provider("x:y", "google-genai") == "google_genai"
    compat.load_chat_provider("openai")  # langchain-openai is installed: imports, builds nothing
    from langchain_openai import ChatOpenAI

    chat_class = compat.chat_model_class("openai")  # what max_retries=0 is checked against
    assert chat_class is ChatOpenAI
    assert "max_retries" in chat_class.model_fields
    monkeypatch.setitem(sys.modules, "langchain_upstage", None)  # as if not installed
    with pytest.raises(ImportError):
        compat.load_chat_provider("upstage")


def test_tracing_params_name_the_provider_and_model() -> None:
    params = compat.tracing_params(ScriptedChatModel())
    assert "ls_provider" in params
    assert "ls_model_name" in params


class _Inner(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


class _Outer(TypedDict, total=False):
    seen: list[str]


def test_a_nested_graph_runs_on_the_checkpointer_lent_to_it() -> None:
    lent, own = InMemorySaver(), InMemorySaver()
    inner_builder = StateGraph(_Inner)
    inner_builder.add_node("work", lambda _state: {"items": ["done"]})
    inner_builder.add_conditional_edges(START, lambda _state: [Send("work", {})], ["work"])
    inner_builder.add_edge("work", END)
    inner = inner_builder.compile(checkpointer=own)

    def outer_node(state: _Outer, config: RunnableConfig) -> _Outer:
        lending: dict[str, Any] = {"configurable": compat.lend(lent, "exit")}
        result = inner.invoke({}, merge_configs(config, lending))
        return {"seen": result["items"]}

    outer_builder = StateGraph(_Outer)
    outer_builder.add_node("outer", outer_node)
    outer_builder.add_edge(START, "outer")
    outer = outer_builder.compile(checkpointer=InMemorySaver())
    result = outer.invoke({}, {"configurable": {"thread_id": "t"}})
    assert result["seen"] == ["done"]
    # The lent saver, not the inner graph's own, received the nested run.
    assert (len(lent.storage), len(own.storage)) == (1, 0)


def test_langgraph_still_names_tasks_the_way_the_trace_recomputes() -> None:
    """The trace reads a step's writes by recomputing LangGraph's task ids: both id
    functions still exist and are deterministic."""
    assert compat.task_id(b"x", "y") == compat.task_id(b"x", "y")
    assert compat.task_id_v1(b"x", "y") == compat.task_id_v1(b"x", "y")
