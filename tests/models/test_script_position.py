"""The scripted model's place in its script follows the conversation: an answer replayed
from its record (made by another process, before a crash) counts as answered."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from corral import Reply, Script, ScriptedChatModel
from corral.keys import AGENT_KEY, RUN_KEY

CONFIG = {"metadata": {AGENT_KEY: "clerk", RUN_KEY: "r1"}}
SCRIPT = Script(agents={"clerk": (Reply(raw="first"), Reply(raw="second"), Reply(raw="third"))})
PROMPT = [HumanMessage("post the refund")]


def test_each_answer_says_its_place_in_the_script() -> None:
    model = ScriptedChatModel(script=SCRIPT)
    first = model.invoke(PROMPT, config=CONFIG)
    second = model.invoke(PROMPT, config=CONFIG)
    assert (first.content, first.response_metadata["script_index"]) == ("first", 0)
    assert (second.content, second.response_metadata["script_index"]) == ("second", 1)


def test_a_fresh_model_goes_on_after_the_answers_in_the_conversation() -> None:
    made = ScriptedChatModel(script=SCRIPT).invoke(PROMPT, config=CONFIG)  # "process A"
    fresh = ScriptedChatModel(script=SCRIPT)  # "process B", resuming with A's answer replayed
    after = fresh.invoke([*PROMPT, made, ToolMessage("ok", tool_call_id="c1")], config=CONFIG)
    assert after.content == "second"
    assert fresh.invoke(PROMPT, config=CONFIG).content == "third"  # and on from there


def test_its_own_count_is_kept_when_the_conversation_holds_no_answer() -> None:
    model = ScriptedChatModel(script=SCRIPT)
    model.invoke(PROMPT, config=CONFIG)
    old = AIMessage("old", response_metadata={"script_index": 0})
    assert model.invoke([*PROMPT, old], config=CONFIG).content == "second"  # not "first"
