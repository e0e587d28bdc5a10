"""The agent node: prompt from role, instructions and the inbound payload; structured
output for the outbound schema; validation errors fed back a bounded number of times."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs
from pydantic import ValidationError

from corral.errors import CorralError, HandoffError, NodeError
from corral.graphs._state import TeamState, Usage, add_usage
from corral.models import AGENT_KEY, RUN_KEY
from corral.nodes._base import Call, Node, Steps
from corral.nodes._handoff import NodePlan, error_lines, hand_on, payload_block, validate


class AgentNode(Node):
    """Runs one model-driven agent."""

    def __init__(self, plan: NodePlan, model: BaseChatModel) -> None:
        self.plan = plan
        self.name = plan.agent.id
        self.structured: Runnable[Any, dict[str, Any]] = model.with_structured_output(
            plan.out_schema, include_raw=True)  # type: ignore[assignment]

    def steps(self, state: TeamState, config: RunnableConfig) -> Steps:
        plan = self.plan
        agent = plan.agent.id
        run_id = config.get("configurable", {}).get("thread_id", "")
        call_config = merge_configs(config, {"metadata": {AGENT_KEY: agent, RUN_KEY: run_id},
                                             "tags": [f"corral:agent:{agent}"]})
        messages = prompt(plan, state)
        usage = Usage(input_tokens=0, output_tokens=0, llm_calls=0)
        errors: list[str] = []
        for _ in range(plan.retries + 1):
            try:
                result = yield Call(self.structured, messages, call_config)
            except CorralError:
                raise
            except Exception as exc:
                raise NodeError(f"model call of agent {agent!r} failed: "
                                f"{type(exc).__name__}: {exc}", agent=agent) from exc
            raw = result.get("raw")
            usage = add_usage(usage, usage_of(raw))
            payload, errors = parse(plan, result)
            if payload is not None:
                return hand_on(plan, payload, usage)
            messages = [*messages, feedback(plan, raw, errors)]
        raise HandoffError(agent=agent, schema=plan.out_name, errors=errors,
                           attempts=plan.retries + 1)


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


def parse(plan: NodePlan, result: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The validated payload of a structured-output result, or why there is none."""
    error = result.get("parsing_error")
    if isinstance(error, ValidationError):
        return None, error_lines(error)
    if error is not None:
        return None, [f"{type(error).__name__}: {error}"]
    parsed = result.get("parsed")
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
