"""What an agent's model sees and how its answer is read: the prompt (role, instructions,
constraints, the inbound payload, scoped context; never a transcript), the parse of a
structured answer, and the feedback that asks again."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSequence
from pydantic import BaseModel, ValidationError

from corral.context import ContextStore, Scope
from corral.manifest import AgentPlan, Who, error_lines, validate
from corral.nodes._base import Inbound
from corral.nodes._state import Usage


def split_structured(
    model: BaseChatModel, schema: type[BaseModel]
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
    raise TypeError(
        f"{type(model).__name__}.with_structured_output returned "
        f"{type(chain).__name__}, not a model | parser sequence"
    )


def with_context(
    messages: list[BaseMessage], store: ContextStore, who: Who, run_id: str, chars: int
) -> list[BaseMessage]:
    """The prompt plus the context this agent may read, each scope cut to ``chars``."""
    scopes: list[tuple[str, Scope]] = [
        ("your private notes", "private"),
        (f"team {who.team}", "team"),
        ("global", "global"),
    ]
    parts = []
    for label, scope in scopes:
        if scope == "team" and who.team is None:
            continue
        entries = store.entries(run_id, who, scope)
        text = "\n".join(f"- {k}: {compact(v)}" for k, v in entries.items())
        if len(text) > chars:
            text = text[:chars] + f"\n[... more of {label} not shown; read_context reads a key]"
        parts.append(f"{label}:\n{text or '(nothing)'}")
    note = HumanMessage("Context you can read:\n\n" + "\n\n".join(parts))
    return [*messages[:1], note, *messages[1:]]


def prompt(plan: AgentPlan, inbound: Inbound, *, delegates: bool = False) -> list[BaseMessage]:
    """What the model sees: its role, instructions and constraints, and the inbound
    payload as compact JSON; nothing its tools (the output schema, ``delegate`` when it
    ``delegates``) already say, beyond the choice between them."""
    spec = plan.spec
    system = [f"You are {spec.role or spec.id}."]
    if spec.instructions:
        system.append(spec.instructions.strip())
    if spec.constraints:
        system.append("Constraints:\n" + "\n".join(f"- {c}" for c in spec.constraints))
    if delegates:
        system.append(
            f"Answer with `{plan.out_name}`, or hand work to your reports with `delegate`."
        )
    task = f"Task from {inbound.source}: {inbound.instruction}\n\n" if inbound.instruction else ""
    human = f"{task}{inbound.schema} from {inbound.source}:\n{payload_block(inbound.payload)}"
    return [SystemMessage("\n\n".join(system)), HumanMessage(human)]


def compact(value: Any) -> str:
    """JSON without spaces or escapes: what a prompt carries costs the fewest tokens."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def payload_block(payload: dict[str, Any]) -> str:
    """A payload as a fenced block of compact JSON, the form corral prompts always use."""
    return f"```json\n{compact(payload)}\n```"


def parse(
    plan: AgentPlan, parser: Runnable[Any, Any], raw: Any, config: RunnableConfig
) -> tuple[dict[str, Any] | None, list[str]]:
    """The validated payload in a raw model answer, or why there is none."""
    try:
        parsed = parser.invoke(raw, config)
    except ValidationError as exc:
        return None, error_lines(exc)
    except Exception as exc:  # parsers raise OutputParserException and friends
        return None, [f"{type(exc).__name__}: {exc}".split("\n")[0]]
    if parsed is None:
        return None, [
            f"no {plan.out_name} in the answer: call the `{plan.out_name}` tool with "
            "valid arguments"
        ]
    return validate(plan.out_schema, parsed)


def feedback(plan: AgentPlan, raw: Any, errors: list[str]) -> HumanMessage:
    """Tell the model what was wrong with its answer and ask again."""
    shown = ""
    if isinstance(raw, AIMessage):
        calls: list[Any] = [c["args"] for c in raw.tool_calls]
        calls += [c.get("args") for c in raw.invalid_tool_calls]
        shown = compact(calls[0]) if calls else str(raw.content)
    listed = "\n".join(f"- {e}" for e in errors)
    return HumanMessage(
        f"Your previous answer was not a valid {plan.out_name}.\n"
        f"Previous answer:\n```\n{shown[:2000]}\n```\nErrors:\n{listed}\n"
        f"Answer again with a valid {plan.out_name}."
    )


def usage_of(message: Any) -> Usage:
    """Usage reported by one model answer (``usage_metadata``), zero if none."""
    meta = getattr(message, "usage_metadata", None) or {}
    return Usage(
        input_tokens=int(meta.get("input_tokens", 0)),
        output_tokens=int(meta.get("output_tokens", 0)),
        llm_calls=1,
    )
