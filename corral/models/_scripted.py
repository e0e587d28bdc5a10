"""``ScriptedChatModel``: a deterministic chat model for demos, tests and fault injection.

It is a real langchain-core ``BaseChatModel``: it binds tools, supports
``with_structured_output`` (through tool calling, as most providers do), streams,
and reports ``usage_metadata`` and ``response_metadata["model_name"]`` so stock
usage callbacks count it. Without a script it answers every structured call with
a value derived from the schema and the input; a ``Script`` injects exact,
invalid or failing replies per agent.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from corral.errors import ScriptedConnectionError, ScriptedProviderError, ScriptedTimeoutError
from corral.keys import AGENT_KEY, RUN_KEY
from corral.models._derive import derive_value, find_payload
from corral.models._script import Reply, Script

SCRIPT_INDEX = "script_index"
"""The ``response_metadata`` entry that says which of the script's replies answered."""
_ERRORS: dict[str, int | None] = {
    "rate_limit": 429,
    "server": 503,
    "bad_request": 400,
    "timeout": None,
    "connection": None,
}


def _raise(reply: Reply) -> None:
    kind = reply.error or ""
    cls = {"timeout": ScriptedTimeoutError, "connection": ScriptedConnectionError}.get(
        kind, ScriptedProviderError
    )
    raise cls(kind, _ERRORS[kind], reply.retry_after)


def count_tokens(text: str) -> int:
    """The scripted model's token count: about four characters a token, at least one."""
    return max(1, math.ceil(len(text) / 4))


class ScriptedChatModel(BaseChatModel):
    """Deterministic chat model; see the module docstring."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str = "scripted"
    script: Script = Field(default_factory=Script)
    latency: float = Field(default=0.0, ge=0)

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: dict[tuple[str, str], int] = PrivateAttr(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "corral-scripted"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the way provider models do (OpenAI tool format)."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Tokens this model will report as input for ``messages`` (and ``tools``)."""
        text = "".join(_text(m) for m in messages)
        if tools:
            text += json.dumps([convert_to_openai_tool(t) for t in tools])
        return count_tokens(text)

    def _next_reply(
        self, messages: list[BaseMessage], metadata: dict[str, Any]
    ) -> tuple[Reply | None, int]:
        """The script's next reply for the calling run and agent, and its place: after
        the calls this model answered, and after the answers already in the conversation
        (a call replayed from its record, in another process, was answered there)."""
        agent = metadata.get(AGENT_KEY)
        key = (str(metadata.get(RUN_KEY, "")), str(agent or ""))
        after = max(
            (
                int(m.response_metadata[SCRIPT_INDEX]) + 1
                for m in messages
                if isinstance(m, AIMessage) and SCRIPT_INDEX in m.response_metadata
            ),
            default=0,
        )
        with self._lock:
            index = max(self._calls.get(key, 0), after)
            self._calls[key] = index + 1
        return self.script.reply(agent, index), index

    def _answer(
        self,
        messages: list[BaseMessage],
        reply: Reply | None,
        tools: list[dict[str, Any]] | None,
        tool_choice: Any = None,
        max_tokens: int | None = None,
        *,
        index: int = 0,
    ) -> AIMessage:
        """The reply as a message: a tool call when tools are bound and not yet answered.

        With ``tool_choice`` "any" (structured output) it always calls the first tool;
        otherwise it calls the first tool once, then answers in text. An answer longer
        than ``max_tokens`` is cut off, as providers do.
        """
        if reply is None:
            raise ScriptedProviderError("script exhausted", None)
        if reply.error is not None:
            _raise(reply)
        tool_calls: list[ToolCall] = []
        content = ""
        if reply.raw is not None:
            content = reply.raw
        elif reply.tool is not None:
            tool_calls.append(
                ToolCall(
                    name=reply.tool.name,
                    args=dict(reply.tool.args),
                    id=f"call_{len(messages)}",
                    type="tool_call",
                )
            )
        elif reply.delegate is not None:
            tool_calls.append(
                ToolCall(
                    name="delegate",
                    args={"subtasks": list(reply.delegate)},
                    id=f"call_{len(messages)}",
                    type="tool_call",
                )
            )
        elif tools and (tool_choice in ("any", "required") or not _tools_answered(messages)):
            function = tools[0]["function"]
            args = (
                reply.output
                if reply.output is not None
                else derive_value(function.get("parameters", {}), find_payload(messages))
            )
            tool_calls.append(
                ToolCall(
                    name=function["name"], args=args, id=f"call_{len(messages)}", type="tool_call"
                )
            )
        else:
            content = (
                json.dumps(reply.output)
                if reply.output is not None
                else "Understood: " + _text(messages[-1])[:200]
                if messages
                else "Understood."
            )
        in_tokens = count_tokens(
            "".join(_text(m) for m in messages) + (json.dumps(tools) if tools else "")
        )
        answer = content + json.dumps([c["args"] for c in tool_calls])
        out_tokens = count_tokens(answer)
        metadata: dict[str, Any] = {
            "model_name": self.model_name,
            "finish_reason": "stop",
            SCRIPT_INDEX: index,
        }
        if max_tokens is not None and out_tokens > max_tokens:
            # Like a provider at its output limit: the answer is cut off mid-way.
            content, tool_calls, out_tokens = answer[: 4 * max_tokens], [], max_tokens
            metadata["finish_reason"] = "length"
        usage = UsageMetadata(
            input_tokens=in_tokens, output_tokens=out_tokens, total_tokens=in_tokens + out_tokens
        )
        return AIMessage(
            content=content, tool_calls=tool_calls, usage_metadata=usage, response_metadata=metadata
        )

    def _prepare(
        self, messages: list[BaseMessage], metadata: dict[str, Any] | None, kwargs: dict[str, Any]
    ) -> tuple[AIMessage, float]:
        reply, index = self._next_reply(messages, metadata or {})
        delay = self.latency + (reply.delay if reply is not None else 0.0)
        return self._answer(
            messages,
            reply,
            kwargs.get("tools"),
            kwargs.get("tool_choice"),
            kwargs.get("max_tokens"),
            index=index,
        ), delay

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message, delay = self._prepare(
            messages, run_manager.metadata if run_manager else None, kwargs
        )
        if delay:
            time.sleep(delay)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message, delay = self._prepare(
            messages, run_manager.metadata if run_manager else None, kwargs
        )
        if delay:
            await asyncio.sleep(delay)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        result = self._generate(messages, stop, run_manager, **kwargs)
        yield from _chunks(result.generations[0].message)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        result = await self._agenerate(messages, stop, run_manager, **kwargs)
        for chunk in _chunks(result.generations[0].message):
            yield chunk


def _chunks(message: BaseMessage) -> Iterator[ChatGenerationChunk]:
    """Content in word-sized pieces; tool calls and usage on the last chunk."""
    assert isinstance(message, AIMessage)
    words = str(message.content).split(" ") if message.content else []
    for word in words[:-1]:
        yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content=words[-1] if words else "",
            tool_call_chunks=[
                {
                    "name": c["name"],
                    "args": json.dumps(c["args"]),
                    "id": c["id"],
                    "index": i,
                    "type": "tool_call_chunk",
                }
                for i, c in enumerate(message.tool_calls)
            ],
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
    )


def _tools_answered(messages: list[BaseMessage]) -> bool:
    """True when a tool result follows the last human message."""
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            return True
        if isinstance(message, HumanMessage):
            return False
    return False


def _text(message: BaseMessage) -> str:
    content = message.content
    return content if isinstance(content, str) else json.dumps(content)
