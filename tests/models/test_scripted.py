"""The scripted model behaves like a provider model: tools, structured output, usage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field, create_model

from corral import ManifestError, Reply, Script, ScriptedChatModel, ScriptedProviderError
from corral.keys import AGENT_KEY, RUN_KEY
from corral.manifest import load_script
from corral.models import derive_value


class Triage(BaseModel):
    category: Literal["billing", "technical", "account"]
    urgency: Literal["low", "high"]
    summary: str = Field(min_length=5, max_length=50)
    score: int = Field(ge=1, le=5)


PROMPT = [HumanMessage('Input:\n```json\n{"summary": "Refund my billing error", "x": 1}\n```')]


def test_structured_output_is_valid_and_deterministic() -> None:
    model = ScriptedChatModel()
    first = model.with_structured_output(Triage).invoke(PROMPT)
    again = ScriptedChatModel().with_structured_output(Triage).invoke(PROMPT)
    assert isinstance(first, Triage)
    assert first == again
    assert first.category == "billing"  # the enum value the input mentions
    assert first.summary == "Refund my billing error"  # same-named input field reused


def test_usage_is_reported_and_counted_by_langchain_callbacks() -> None:
    handler = UsageMetadataCallbackHandler()
    message = ScriptedChatModel().invoke("hello there", config={"callbacks": [handler]})
    assert isinstance(message, AIMessage)
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == 3  # ceil(len("hello there") / 4)
    assert message.response_metadata["model_name"] == "scripted"
    assert (
        handler.usage_metadata["scripted"]["total_tokens"] == message.usage_metadata["total_tokens"]
    )


def test_streaming_reports_usage_and_tool_calls() -> None:
    handler = UsageMetadataCallbackHandler()
    model = ScriptedChatModel().bind_tools([Triage], tool_choice="any")
    chunks = list(model.stream(PROMPT, config={"callbacks": [handler]}))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessage)
    assert total.tool_calls[0]["name"] == "Triage"
    Triage.model_validate(total.tool_calls[0]["args"])
    assert total.usage_metadata is not None
    assert (
        handler.usage_metadata["scripted"]["output_tokens"] == total.usage_metadata["output_tokens"]
    )


def test_plain_tools_are_called_with_valid_arguments() -> None:
    @tool
    def lookup_invoice(invoice_id: str, amount: float) -> str:
        """Look up an invoice."""
        return invoice_id

    message = ScriptedChatModel().bind_tools([lookup_invoice]).invoke(PROMPT)
    assert isinstance(message, AIMessage)
    call = message.tool_calls[0]
    assert call["name"] == "lookup_invoice"
    assert lookup_invoice.invoke(call["args"]) == call["args"]["invoice_id"]


def test_script_replies_in_order_per_agent_and_run() -> None:
    script = Script(
        agents={
            "triage": (
                Reply(raw="not json"),
                Reply(
                    output={
                        "category": "account",
                        "urgency": "low",
                        "summary": "fixed!",
                        "score": 2,
                    }
                ),
                Reply(error="rate_limit"),
            )
        }
    )
    model = ScriptedChatModel(script=script).with_structured_output(Triage, include_raw=True)
    config = {"metadata": {AGENT_KEY: "triage", RUN_KEY: "r1"}}
    first = model.invoke(PROMPT, config=config)
    assert first["parsed"] is None
    assert first["raw"].content == "not json"
    second = model.invoke(PROMPT, config=config)
    assert second["parsed"].category == "account"
    with pytest.raises(ScriptedProviderError) as caught:
        model.invoke(PROMPT, config=config)
    assert caught.value.status_code == 429
    other_run = model.invoke(PROMPT, config={"metadata": {AGENT_KEY: "triage", RUN_KEY: "r2"}})
    assert other_run["raw"].content == "not json"  # each run has its own script position
    other_agent = model.invoke(PROMPT, config={"metadata": {AGENT_KEY: "qa", RUN_KEY: "r1"}})
    assert isinstance(other_agent["parsed"], Triage)  # unlisted agents get auto answers


def test_exhausted_script_can_be_an_error() -> None:
    model = ScriptedChatModel(script=Script(replies=(Reply(auto=True),), then="error"))
    model.invoke("one")
    with pytest.raises(ScriptedProviderError, match="script exhausted"):
        model.invoke("two")


def test_async_calls_and_delay() -> None:
    model = ScriptedChatModel(script=Script(replies=(Reply(auto=True, delay=0.05),)))
    parsed = asyncio.run(model.with_structured_output(Triage).ainvoke(PROMPT))
    assert isinstance(parsed, Triage)


def test_script_files_are_validated_with_lines(write: Callable[..., Path]) -> None:
    good = write("ok.yaml", "agents:\n  triage:\n    - raw: nope\n    - error: timeout\n")
    assert load_script(good).agents["triage"][1].error == "timeout"
    bad = write("bad.yaml", "agents:\n  triage:\n    - raw: nope\n      error: timeout\n")
    with pytest.raises(ManifestError) as caught:
        load_script(bad)
    assert caught.value.problems[0].line == 3
    assert "exactly one of raw, output, tool, delegate, error" in caught.value.problems[0].message


_FIELD = st.one_of(
    st.builds(
        lambda lo, span: (str, Field(min_length=lo, max_length=lo + span)),
        st.integers(0, 20),
        st.integers(0, 30),
    ),
    st.builds(
        lambda lo, span: (int, Field(ge=lo, le=lo + span)),
        st.integers(-1000, 1000),
        st.integers(0, 1000),
    ),
    st.builds(
        lambda lo, span: (float, Field(gt=lo, lt=lo + span)),
        st.floats(-1e3, 1e3),
        st.floats(0.1, 1e3),
    ),
    st.just((bool, ...)),
    st.builds(lambda n: (list[str], Field(min_length=n)), st.integers(0, 4)),
    st.lists(st.text("abcxyz", min_size=1, max_size=5), min_size=1, max_size=4, unique=True).map(
        lambda values: (Literal[tuple(values)], ...)
    ),  # type: ignore[misc]
)


@settings(max_examples=150, deadline=None)
@given(
    fields=st.dictionaries(
        st.from_regex(r"[a-z]{1,8}", fullmatch=True), _FIELD, min_size=1, max_size=6
    ),
    source=st.dictionaries(
        st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        st.one_of(st.text(max_size=40), st.integers(), st.booleans()),
        max_size=6,
    ),
)
def test_derived_values_are_valid_for_any_schema(
    fields: dict[str, tuple[object, object]], source: dict[str, object]
) -> None:
    model = create_model("Generated", **fields)  # type: ignore[call-overload]
    value = derive_value(model.model_json_schema(), source)
    model.model_validate(value)
    assert derive_value(model.model_json_schema(), source) == value


class Letter(BaseModel):
    ticket_id: str
    subject: str
    body: str = Field(min_length=20)
    notes: str
    actions: list[str] = Field(min_length=2)
    refund_usd: float = Field(ge=0, le=1000)
    owner_id: str


def test_derived_text_reads_like_its_field_not_an_echo_of_the_input() -> None:
    ticket = {
        "ticket_id": "T-1",
        "subject": "Charged twice for March",
        "customer": "Ada Lovelace",
        "text": "Hello, my statement shows two charges of 49 USD. Please refund one.",
    }
    reply = Letter.model_validate(derive_value(Letter.model_json_schema(), ticket))
    assert reply.subject == "Charged twice for March"  # a field of the input is kept
    assert reply.body.startswith("Hello Ada Lovelace,")
    assert "Charged twice for March" in reply.body
    assert reply.body.rstrip().endswith("The support team")
    assert ticket["text"] not in reply.body  # not the input echoed back
    assert not reply.notes.startswith("notes:")
    assert "policy" in reply.notes
    assert reply.actions[0].startswith("Confirm the details of")
    assert reply.actions[0] != reply.actions[1]
    assert reply.refund_usd == 49.0  # the amount the input mentions
    assert reply.owner_id.startswith("OWN-")
