"""The meter: every model call of an agent goes through the budget and into the ledger.

Before a call: the input is counted (the model's own counter where a per-call limit
asks for it), trimmed or refused at ``max_input_tokens``, and a reservation of input
plus maximum output is made against every layer. After it: the real usage (from
``usage_metadata``), the cost and the latency are settled, and alerts are raised.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableSequence

from corral.errors import BudgetExceeded
from corral.guards._verdicts import Verdicts
from corral.models import Price, ScriptedChatModel, count_tokens, price
from corral.workspace import BudgetLimits, Ledger, Reply, Settled, reply_of

log = logging.getLogger("corral.budget")
DEFAULT_OUTPUT_RESERVE = 1024
"""Tokens reserved for a call's answer when no ``max_output_tokens`` bounds it."""


class Meter:
    """Budget checks and ledger rows for one agent's model calls.

    ``before`` a call: count, trim or refuse, and reserve (a ledger row id, or ``None``
    when there is no limit to check); ``after`` it: settle (or record); ``release`` a
    reservation whose call failed.
    """

    def __init__(
        self,
        *,
        agent: str,
        model_label: str,
        ledger: Ledger,
        limits: BudgetLimits,
        verdicts: Verdicts,
        policy: str,
        content: str = "redacted",
        declared_price: Price | None = None,
    ) -> None:
        self.content = content
        self.declared_price = declared_price
        """The team's own price for the model, over ``genai-prices``."""
        self.agent = agent
        self.model_label = model_label
        self.ledger = ledger
        self.limits = limits
        self.verdicts = verdicts
        self.policy = policy
        self.metrics = verdicts.metrics
        self._warned: set[str] = set()
        self._series: dict[str, tuple[Any, Any, Any, Any]] = {}
        self.limited = limits.limited
        """True when calls are reserved and checked before they are made."""

    def before(
        self,
        model: Runnable[Any, Any],
        messages: list[BaseMessage],
        run_id: str,
        task_key: str,
        call: str | None = None,
    ) -> tuple[list[BaseMessage], int | None]:
        """The messages to send (trimmed if allowed) and the reservation's row, if any
        (kept with ``call``, the call's reply key).

        Raises:
            BudgetExceeded: a layer would be passed (recorded as a trip first).
        """
        if not self.limited:
            return messages, None
        chat, tools = _unwrap(model)
        messages, tokens = self._input(chat, tools, messages, run_id)
        out = self.limits.max_output_tokens or DEFAULT_OUTPUT_RESERVE
        estimate = price(self.model_label, tokens, out, declared=self.declared_price)
        try:
            row = self.ledger.reserve(
                run_id=run_id,
                task_key=task_key,
                agent=self.agent,
                model=self.model_label,
                tokens=tokens + out,
                cost=estimate or 0.0,
                limits=self.limits,
                call=call,
            )
        except BudgetExceeded as exc:
            self.verdicts.trip(run_id, exc, self.policy)
            raise
        return messages, row

    def after(
        self,
        row: int | None,
        messages: list[BaseMessage],
        raw: Any,
        latency_ms: float,
        *,
        run_id: str,
        task_key: str,
        call: str | None = None,
    ) -> tuple[str, float | None]:
        """Settle a reserved call (or record an unreserved one) with its real usage and
        what the trace keeps of it (and with ``call``, its reply key, the answer itself
        for a re-executed task to replay); the model it was priced as and its cost
        (``None`` when unknown)."""
        kept = kept_content(self.content, messages, raw)
        reply = reply_of(call, run_id, raw) if call is not None else None
        return self._settle(
            row, raw, latency_ms, run_id=run_id, task_key=task_key, content=kept, reply=reply
        )

    def release(self, row: int | None) -> None:
        """Give back the reservation of a call that failed before it was answered."""
        if row is not None:
            self.ledger.release(row)

    def _input(
        self, chat: BaseChatModel | None, tools: Any, messages: list[BaseMessage], run_id: str
    ) -> tuple[list[BaseMessage], int]:
        limit = self.limits.max_input_tokens
        tokens = self._count(chat, tools, messages, exact=limit is not None)
        if limit is None or tokens <= limit:
            return messages, tokens
        if self.limits.trim_input:
            trimmed = _trim(messages, tokens - limit)
            tokens = self._count(chat, tools, trimmed, exact=True)
            if tokens <= limit:
                return trimmed, tokens
        exc = BudgetExceeded(
            agent=self.agent, layer="max_input_tokens", limit=limit, used=0, requested=tokens
        )
        self.verdicts.trip(run_id, exc, self.policy)
        raise exc

    def _count(
        self, chat: BaseChatModel | None, tools: Any, messages: list[BaseMessage], *, exact: bool
    ) -> int:
        if chat is not None and (exact or isinstance(chat, ScriptedChatModel)):
            try:
                return int(chat.get_num_tokens_from_messages(messages, tools=tools))
            except Exception as exc:  # a counter may need data it cannot fetch offline
                self._warn(
                    f"count:{type(chat).__name__}",
                    f"{type(chat).__name__} cannot count tokens here ({exc}); "
                    "estimating at 4 characters a token",
                )
        text = "".join(str(m.content) for m in messages) + (json.dumps(tools) if tools else "")
        return count_tokens(text)

    def _settle(
        self,
        row: int | None,
        raw: Any,
        latency_ms: float,
        *,
        run_id: str,
        task_key: str,
        content: str | None,
        reply: Reply | None,
    ) -> tuple[str, float | None]:
        meta = getattr(raw, "usage_metadata", None) or {}
        model = self.model_label
        if isinstance(raw, AIMessage):
            named = raw.response_metadata.get("model_name")
            if named and self.model_label != "scripted":
                provider = self.model_label.split(":", 1)[0] if ":" in self.model_label else ""
                model = f"{provider}:{named}" if provider else str(named)
        used_in, used_out = int(meta.get("input_tokens", 0)), int(meta.get("output_tokens", 0))
        cached = int((meta.get("input_token_details") or {}).get("cache_read", 0) or 0)
        cost = price(model, used_in, used_out, cached, declared=self.declared_price)
        if cost is None:
            self._warn(
                f"price:{model}",
                f"no price known for model {model!r}; its cost is recorded as unknown",
            )
        settled = Settled([], None)
        if row is None:
            self.ledger.record(
                run_id=run_id,
                task_key=task_key,
                agent=self.agent,
                model=model,
                input_tokens=used_in,
                output_tokens=used_out,
                cached_tokens=cached,
                cost=cost,
                latency_ms=latency_ms,
                content=content,
                reply=reply,
            )
        else:
            settled = self.ledger.settle(
                row,
                agent=self.agent,
                model=model,
                input_tokens=used_in,
                output_tokens=used_out,
                cached_tokens=cached,
                cost=cost,
                latency_ms=latency_ms,
                limits=self.limits,
                content=content,
                reply=reply,
            )
        self._observe(model, used_in, used_out, cost, settled.agent_tokens_today)
        for alert in settled.alerts:
            self.verdicts.alert(run_id, alert)
        return model, cost

    def _observe(
        self, model: str, used_in: int, used_out: int, cost: float | None, tokens_today: int | None
    ) -> None:
        series = self._series.get(model)
        if series is None:  # a labelled child is looked up once, not on every call
            m = self.metrics
            series = self._series[model] = (
                m.calls.labels(self.agent, model),
                m.tokens.labels(self.agent, model, "input"),
                m.tokens.labels(self.agent, model, "output"),
                m.cost.labels(self.agent, model),
            )
        calls, tokens_in, tokens_out, spent = series
        calls.inc()
        tokens_in.inc(used_in)
        tokens_out.inc(used_out)
        if cost:
            spent.inc(cost)
        if self.limits.daily_tokens and tokens_today is not None:
            self.metrics.budget_used.labels(self.agent).set(tokens_today / self.limits.daily_tokens)

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)


def _unwrap(model: Runnable[Any, Any]) -> tuple[BaseChatModel | None, Any]:
    """The chat model behind bindings (and the tools bound on it)."""
    kwargs: dict[str, Any] = {}
    current: Any = model
    while True:
        if isinstance(current, RunnableBinding):
            kwargs = {**current.kwargs, **kwargs}
            current = current.bound
        elif isinstance(current, RunnableSequence):
            current = current.first
        else:
            break
    return (current if isinstance(current, BaseChatModel) else None), kwargs.get("tools")


def _trim(messages: list[BaseMessage], excess: int) -> list[BaseMessage]:
    """Shorten the last human message by about ``excess`` tokens, saying so."""
    last = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
    text = str(messages[last].content)
    keep = max(0, len(text) - 4 * excess - 64)
    cut = HumanMessage(
        text[:keep] + f"\n[... {len(text) - keep} characters trimmed to fit the input budget]"
    )
    return [*messages[:last], cut, *messages[last + 1 :]]


def kept_content(policy: str, messages: list[BaseMessage], raw: Any) -> str | None:
    """What a trace keeps of one call (JSON): the messages and the answer (``full``),
    only their sizes and SHA-256 hashes (``redacted``), or nothing (``none``)."""
    if policy == "none":
        return None
    content = raw.content if isinstance(raw, AIMessage) else raw
    calls = raw.tool_calls if isinstance(raw, AIMessage) else []
    if policy == "full":
        sent = [{"role": m.type, "content": m.content} for m in messages]
        answered: dict[str, Any] = {"content": content}
        if calls:
            answered["tool_calls"] = [{"name": c["name"], "args": c["args"]} for c in calls]
        return json.dumps({"prompt": sent, "response": answered}, default=str)
    said = [f"{m.type}\n{m.content}" for m in messages]
    answer = [str(content), *(json.dumps([c["name"], c["args"]], default=str) for c in calls)]
    return json.dumps({"prompt": _digest(said), "response": _digest(answer)})


def _digest(parts: list[str]) -> dict[str, Any]:
    """The size and SHA-256 of some text, never the text."""
    digest = hashlib.sha256()
    chars = 0
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x00")
        chars += len(part)
    return {"chars": chars, "sha256": digest.hexdigest()}
