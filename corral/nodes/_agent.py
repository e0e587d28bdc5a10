"""The agent node: prompt from role, instructions and the inbound payload; structured
output for the outbound schema; validation errors fed back a bounded number of times."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSequence
from langchain_core.runnables.config import merge_configs
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError

from corral.errors import CorralError, HandoffError, NodeError
from corral.graphs._state import TeamState, Usage, add_usage
from corral.models import AGENT_KEY, RUN_KEY
from corral.nodes._base import Call, Node, Steps
from corral.nodes._handoff import NodePlan, error_lines, hand_on, payload_block, validate


class AgentNode(Node):
    """Runs one model-driven agent."""

    def __init__(self, plan: NodePlan, model: BaseChatModel,
                 tools: Mapping[str, BaseTool] | None = None) -> None:
        self.plan = plan
        self.name = plan.agent.id
        self.ask, self.parser = split_structured(model, plan.out_schema)
        self.tools = dict(tools or {})
        self.with_tools = model.bind_tools(list(self.tools.values())) if self.tools else None

    def steps(self, state: TeamState, config: RunnableConfig) -> Steps:
        plan = self.plan
        agent = plan.agent.id
        run_id = config.get("configurable", {}).get("thread_id", "")
        call_config = merge_configs(config, {"metadata": {AGENT_KEY: agent, RUN_KEY: run_id},
                                             "tags": [f"corral:agent:{agent}"]})
        messages = prompt(plan, state)
        usage = Usage(input_tokens=0, output_tokens=0, llm_calls=0)
        if self.with_tools is not None:
            messages, usage = yield from self._use_tools(self.with_tools, messages, call_config)
        errors: list[str] = []
        for _ in range(plan.retries + 1):
            raw = yield from self._ask(self.ask, messages, call_config)
            usage = add_usage(usage, usage_of(raw))
            payload, errors = parse(plan, self.parser, raw, call_config)
            if payload is not None:
                return hand_on(plan, payload, usage)
            messages = [*messages, feedback(plan, raw, errors)]
        raise HandoffError(agent=agent, schema=plan.out_name, errors=errors,
                           attempts=plan.retries + 1)

    def _ask(self, model: Runnable[Any, Any], messages: list[BaseMessage],
             config: RunnableConfig) -> Generator[Call, Any, Any]:
        """One model call; a provider's error becomes a ``NodeError`` naming the agent."""
        try:
            return (yield Call(model, messages, config))
        except CorralError:
            raise
        except Exception as exc:
            agent = self.plan.agent.id
            raise NodeError(f"model call of agent {agent!r} failed: "
                            f"{type(exc).__name__}: {exc}", agent=agent) from exc

    def _use_tools(self, model: Runnable[Any, Any], messages: list[BaseMessage],
                   config: RunnableConfig
                   ) -> Generator[Call, Any, tuple[list[BaseMessage], Usage]]:
        """Let the model call its own tools, at most ``tool_rounds`` rounds.

        A call to a tool the agent does not have is refused and said so to the model;
        a tool's error is given back to the model as an error result.
        """
        usage = Usage(input_tokens=0, output_tokens=0, llm_calls=0)
        for _ in range(self.plan.tool_rounds):
            answer = yield from self._ask(model, messages, config)
            usage = add_usage(usage, usage_of(answer))
            messages = [*messages, answer]
            if not isinstance(answer, AIMessage) or not answer.tool_calls:
                return messages, usage
            for call in answer.tool_calls:
                messages.append((yield from self._run_tool(call, config)))
        note = HumanMessage("No more tool calls: answer now with what you have.")
        return [*messages, note], usage

    def _run_tool(self, call: ToolCall, config: RunnableConfig
                  ) -> Generator[Call, Any, ToolMessage]:
        tool = self.tools.get(call["name"])
        call_id = call.get("id") or ""
        if tool is None:
            return ToolMessage(f"refused: no tool {call['name']!r}; your tools are "
                               f"{', '.join(sorted(self.tools))}", tool_call_id=call_id,
                               status="error")
        try:
            result = yield Call(tool, call, config)
        except Exception as exc:  # the model sees the failure and may try otherwise
            return ToolMessage(f"error: {type(exc).__name__}: {exc}", tool_call_id=call_id,
                               status="error")
        if isinstance(result, ToolMessage):
            return result
        return ToolMessage(str(result), tool_call_id=call_id)


def prompt(plan: NodePlan, state: TeamState) -> list[BaseMessage]:
    """What the model sees: its role and instructions and the inbound payload only."""
    spec = plan.agent
    inbound = state["handoff"]
    system = [f"You are {spec.role or spec.id} (agent '{spec.id}' of team '{plan.team}')."]
    if spec.instructions:
        system.append(spec.instructions.strip())
    if spec.constraints:
        system.append("Constraints you must follow:\n" +
                      "\n".join(f"- {c}" for c in spec.constraints))
    system.append(f"Answer with one {plan.out_name} object by calling the `{plan.out_name}` "
                  "tool with arguments valid for its schema.")
    human = (f"Input ({inbound['schema']}, from {inbound['source']}):\n"
             + payload_block(inbound["payload"]))
    return [SystemMessage("\n\n".join(system)), HumanMessage(human)]


def split_structured(model: BaseChatModel, schema: type[BaseModel]
                     ) -> tuple[Runnable[Any, Any], Runnable[Any, Any]]:
    """The model's own ``with_structured_output`` chain, as (ask the model, parse).

    Keeping the halves apart gives the raw answer (usage, feedback) and the parse error
    without ``include_raw``'s parallel map, while each provider keeps its native
    structured-output method.
    """
    chain = model.with_structured_output(schema)
    if isinstance(chain, RunnableSequence) and len(chain.steps) >= 2:
        head = chain.steps[:-1]
        ask = head[0] if len(head) == 1 else RunnableSequence(*head)
        return ask, chain.steps[-1]
    raise TypeError(f"{type(model).__name__}.with_structured_output returned "
                    f"{type(chain).__name__}, not a model | parser sequence")


def parse(plan: NodePlan, parser: Runnable[Any, Any], raw: Any,
          config: RunnableConfig) -> tuple[dict[str, Any] | None, list[str]]:
    """The validated payload in a raw model answer, or why there is none."""
    try:
        parsed = parser.invoke(raw, config)
    except ValidationError as exc:
        return None, error_lines(exc)
    except Exception as exc:  # parsers raise OutputParserException and friends
        return None, [f"{type(exc).__name__}: {exc}".split("\n")[0]]
    if parsed is None:
        return None, [f"no {plan.out_name} in the answer: call the `{plan.out_name}` tool with "
                      "valid arguments"]
    return validate(plan.out_schema, parsed)


def feedback(plan: NodePlan, raw: Any, errors: list[str]) -> HumanMessage:
    """Tell the model what was wrong with its answer and ask again."""
    shown = ""
    if isinstance(raw, AIMessage):
        calls: list[Any] = [c["args"] for c in raw.tool_calls]
        calls += [c.get("args") for c in raw.invalid_tool_calls]
        shown = json.dumps(calls[0]) if calls else str(raw.content)
    listed = "\n".join(f"- {e}" for e in errors)
    return HumanMessage(f"Your previous answer was not a valid {plan.out_name}.\n"
                        f"Previous answer:\n```\n{shown[:2000]}\n```\nErrors:\n{listed}\n"
                        f"Answer again with a valid {plan.out_name}.")


def usage_of(message: Any) -> Usage:
    """Usage reported by one model answer (``usage_metadata``), zero if none."""
    meta = getattr(message, "usage_metadata", None) or {}
    return Usage(input_tokens=int(meta.get("input_tokens", 0)),
                 output_tokens=int(meta.get("output_tokens", 0)), llm_calls=1)
