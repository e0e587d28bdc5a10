"""The agent runner: one model-driven agent answering one piece of work.

The prompt holds the agent's role, instructions and constraints and the inbound
payload (plus, for a subtask, the delegator's instruction), never a transcript. The
model may call the agent's own tools, then answers with its output schema; an invalid
answer is fed back a bounded number of times. A supervisor may instead call
``delegate``: see ``_delegation``.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

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
from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from corral.context import ContextStore, Scope, Who, idempotency_key
from corral.errors import CorralError, HandoffError, NodeError, RunError
from corral.graphs._state import Usage, add_usage
from corral.guards import Breakers, GuardTripped
from corral.manifest._spec import BreakerSpec, RetrySpec
from corral.nodes._base import Call, Inbound, Pause, Steps, Work
from corral.nodes._handoff import NodePlan, error_lines, payload_block, validate
from corral.nodes._transient import backoff, is_transient

if TYPE_CHECKING:
    from corral.nodes._delegation import Delegation, Hierarchy, Runner
    from corral.nodes._meter import Meter

NO_USAGE = Usage(input_tokens=0, output_tokens=0, llm_calls=0)


class BreakerOpen(RunError):
    """The agent's circuit breaker is open: its calls are skipped for now."""


Answer = tuple[dict[str, Any], Usage]


class AgentRunner:
    """Runs one agent; ``answer`` is a generator of ``Call``s returning (payload, usage)."""

    def __init__(
        self,
        plan: NodePlan,
        model: BaseChatModel,
        *,
        tools: Mapping[str, BaseTool] | None = None,
        delegation: Delegation | None = None,
        hierarchy: Hierarchy | None = None,
        meter: Meter | None = None,
    ) -> None:
        self.plan = plan
        self.hierarchy = hierarchy
        self.meter = meter
        self.retry = plan.agent.retry or (hierarchy.guards.retry if hierarchy else RetrySpec())
        self.fallback: Runner | None = None
        self.who: Who | None = None  # set when the agent uses scoped context
        cap = meter.budget.max_output_tokens if meter is not None else None
        self.ask, self.parser = split_structured(model, plan.out_schema)
        if cap:
            self.ask = self.ask.bind(max_tokens=cap)
        self.tools = dict(tools or {})
        self.with_tools = (
            model.bind_tools(list(self.tools.values())).bind(**({"max_tokens": cap} if cap else {}))
            if self.tools
            else None
        )
        self.delegation = delegation
        self.supervise = (
            model.bind_tools([plan.out_schema, delegation.tool], tool_choice="any").bind(
                **({"max_tokens": cap} if cap else {})
            )
            if delegation
            else None
        )

    def answer(self, inbound: Inbound, work: Work) -> Steps:
        """Answer ``inbound``; if the agent fails (or its breaker is open), its fallback
        answers instead, flagged as degraded; with no fallback the failure goes on up."""
        agent = self.plan.agent.id
        breaker = self._breaker()
        verdict = breaker[0].admit(agent) if breaker else "closed"
        try:
            if verdict == "open":
                raise BreakerOpen(
                    f"the circuit breaker of {agent!r} is open after repeated "
                    "failures; its calls go to its fallback or escalation",
                    agent=agent,
                )
            result: Answer = yield from self._answer(inbound, work)
        except GuardTripped:
            raise
        except RunError as exc:
            if (
                breaker
                and not isinstance(exc, BreakerOpen)
                and breaker[0].failed(agent, breaker[1])
            ):
                self._event(work, "breaker_opened", {"failures": breaker[1].failures})
            self._failure(work, 0, exc, "fallback" if self.fallback else "escalate")
            if self.fallback is None:
                raise
            fallen: Answer = yield from self.fallback.answer(inbound, work)
            work.flags["degraded"] = True
            return fallen
        if breaker and verdict == "probe" and breaker[0].succeeded(agent):
            self._event(work, "breaker_closed", {})
        return result

    def _breaker(self) -> tuple[Breakers, BreakerSpec] | None:
        hierarchy = self.hierarchy
        if hierarchy is None or hierarchy.breakers is None or hierarchy.guards.breaker is None:
            return None
        return hierarchy.breakers, hierarchy.guards.breaker

    def _event(self, work: Work, kind: str, data: dict[str, Any]) -> None:
        if self.hierarchy is not None:
            self.hierarchy.record(work, kind, self.plan.agent.id, data)

    def _failure(self, work: Work, attempt: int, exc: BaseException, then: str) -> None:
        """Record a failure: which attempt, what went wrong, what happens next."""
        self._event(
            work,
            "failure",
            {
                "attempt": attempt,
                "error": type(exc).__name__,
                "message": str(exc)[:500],
                "then": then,
            },
        )

    def _answer(self, inbound: Inbound, work: Work) -> Steps:
        """Answer ``inbound``: tools first, then a valid output or a delegation."""
        messages = prompt(self.plan, inbound)
        if (
            self.who is not None
            and self.hierarchy is not None
            and self.hierarchy.context is not None
        ):
            messages = with_context(
                messages, self.hierarchy.context, self.who, work.run_id, self.hierarchy.prompt_chars
            )
        usage = NO_USAGE
        if self.with_tools is not None:
            messages, usage = yield from self._use_tools(self.with_tools, messages, work)
        if self.supervise is not None:
            result: Answer = yield from self._supervise(self.supervise, messages, usage, work)
            return result
        errors: list[str] = []
        for _ in range(self.plan.retries + 1):
            raw = yield from self._ask(self.ask, messages, work, usage)
            usage = add_usage(usage, usage_of(raw))
            payload, errors = parse(self.plan, self.parser, raw, work.config)
            if payload is not None:
                return payload, usage
            messages = [*messages, feedback(self.plan, raw, errors)]
        raise HandoffError(
            agent=self.plan.agent.id,
            schema=self.plan.out_name,
            errors=errors,
            attempts=self.plan.retries + 1,
        )

    def _supervise(
        self, model: Runnable[Any, Any], messages: list[BaseMessage], usage: Usage, work: Work
    ) -> Generator[Call, Any, Answer]:
        """Answer, or delegate to direct reports and read their results, until an answer."""
        assert self.delegation is not None
        plan, agent = self.plan, self.plan.agent.id
        failures, rounds = 0, 0
        errors: list[str] = []
        while True:
            raw = yield from self._ask(model, messages, work, usage)
            usage = add_usage(usage, usage_of(raw))
            call = raw.tool_calls[0] if isinstance(raw, AIMessage) and raw.tool_calls else None
            if call is not None and call["name"] == self.delegation.tool.__name__:
                outcome, spent = yield from self.delegation.delegate(
                    call["args"], work, rounds, agent
                )
                rounds += 1
                usage = add_usage(usage, spent)
                messages = [*messages, raw, ToolMessage(outcome, tool_call_id=call["id"] or "")]
                continue
            if call is not None and call["name"] == plan.out_name:
                payload, errors = validate(plan.out_schema, call["args"])
                if payload is not None:
                    return payload, usage
            else:
                errors = [f"call `{plan.out_name}` to answer or `delegate` to hand out work"]
            failures += 1
            if failures > plan.retries:
                raise HandoffError(
                    agent=agent, schema=plan.out_name, errors=errors, attempts=failures
                )
            messages = [*messages, feedback(plan, raw, errors)]

    def _ask(
        self, model: Runnable[Any, Any], messages: list[BaseMessage], work: Work, usage: Usage
    ) -> Generator[Call, Any, Any]:
        """One model call, within the agent's calls per task (``usage`` counts those made);
        a provider's error becomes a ``NodeError`` naming the agent."""
        made, cap, agent = usage["llm_calls"], self.plan.max_calls, self.plan.agent.id
        if made >= cap:
            trip = GuardTripped(
                "max_llm_calls_per_task",
                limit=cap,
                seen=made + 1,
                agent=agent,
                message=f"agent {agent!r} would make model call {made + 1} for one task",
            )
            if self.hierarchy is not None:
                self.hierarchy.record_trip(work, trip, "halt")
            raise trip
        spec = self.retry
        for attempt in range(1, spec.max_attempts + 1):
            try:
                if self.meter is not None:
                    return (yield from self.meter.call(model, messages, work, spec.timeout))
                return (yield Call(model, messages, work.config, timeout=spec.timeout))
            except CorralError:
                raise
            except Exception as exc:
                if not is_transient(exc) or attempt == spec.max_attempts:
                    self._failure(work, attempt, exc, "give up")
                    reason = (
                        "not retryable" if not is_transient(exc) else f"after {attempt} attempts"
                    )
                    raise NodeError(
                        f"model call of agent {agent!r} failed ({reason}): "
                        f"{type(exc).__name__}: {exc}",
                        agent=agent,
                    ) from exc
                wait = backoff(spec, attempt, exc)
                self._failure(work, attempt, exc, f"retry in {wait:.3f} s")
                yield Call(Pause(wait))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _use_tools(
        self, model: Runnable[Any, Any], messages: list[BaseMessage], work: Work
    ) -> Generator[Call, Any, tuple[list[BaseMessage], Usage]]:
        """Let the model call its own tools, at most ``tool_rounds`` rounds.

        A call to a tool the agent does not have is refused and said so to the model;
        a tool's error is given back to the model as an error result.
        """
        usage = NO_USAGE
        index = 0
        for _ in range(self.plan.tool_rounds):
            answer = yield from self._ask(model, messages, work, usage)
            usage = add_usage(usage, usage_of(answer))
            messages = [*messages, answer]
            if not isinstance(answer, AIMessage) or not answer.tool_calls:
                return messages, usage
            for call in answer.tool_calls:
                messages.append((yield from self._run_tool(call, work, index)))
                index += 1
        note = HumanMessage("No more tool calls: answer now with what you have.")
        return [*messages, note], usage

    def _run_tool(
        self, call: ToolCall, work: Work, index: int
    ) -> Generator[Call, Any, ToolMessage]:
        """Run one tool call the model asked for, if the agent may, exactly once.

        Refused before any effect (and audited): a tool the agent does not have, or one
        needing a capability it lacks. A tool that requires review waits for a person.
        A call already made (same run, task, position, tool and arguments) is answered
        from its recorded result.
        """
        agent = self.plan.agent
        name, args, call_id = call["name"], call["args"], call.get("id") or ""
        tool = self.tools.get(name)
        spec = self.hierarchy.tool_specs.get(name) if self.hierarchy else None
        missing = [
            flag for flag in (spec.requires if spec else ()) if not getattr(agent.permissions, flag)
        ]
        invalid = _bad_args(tool, args) if tool is not None and not missing else None
        if tool is None or missing or invalid:
            reason = (
                f"not one of {agent.id!r}'s tools ({', '.join(sorted(self.tools))})"
                if tool is None
                else f"it requires {', '.join(missing)}"
                if missing
                else f"invalid arguments: {invalid}"
            )
            self._audit(work, name, "denied", reason)
            return ToolMessage(f"refused: {name!r}: {reason}", tool_call_id=call_id, status="error")
        if (spec is not None and spec.requires_review) or agent.permissions.requires_review:
            decision = interrupt(
                {
                    "kind": "tool",
                    "source": agent.id,
                    "target": name,
                    "schema": f"tool:{name}",
                    "payload": args,
                    "reason": f"{agent.id!r} wants to call {name!r}",
                }
            )
            if decision.get("action") == "reject":
                self._audit(
                    work, name, "denied", f"rejected by a reviewer: {decision.get('reason')}"
                )
                return ToolMessage(
                    f"refused by a reviewer: {decision.get('reason')}",
                    tool_call_id=call_id,
                    status="error",
                )
            if decision.get("action") == "edit":
                args = decision.get("payload") or args
        calls = self.hierarchy.tool_calls if self.hierarchy else None
        key = idempotency_key(work.run_id, work.key, index, name, args)
        done = calls.recorded(key) if calls is not None else None
        if done is not None:
            return ToolMessage(done, tool_call_id=call_id)
        config = merge_configs(work.config, {"metadata": {"corral_idempotency_key": key}})
        try:
            result = yield Call(tool, {**call, "args": args}, config)
        except Exception as exc:  # the model sees the failure and may try otherwise
            return ToolMessage(
                f"error: {type(exc).__name__}: {exc}", tool_call_id=call_id, status="error"
            )
        message = (
            result
            if isinstance(result, ToolMessage)
            else ToolMessage(str(result), tool_call_id=call_id)
        )
        if calls is not None:
            calls.record(
                key,
                run_id=work.run_id,
                agent=agent.id,
                tool=name,
                args=args,
                result=str(message.content),
            )
        return message

    def _audit(self, work: Work, tool: str, verdict: str, reason: str) -> None:
        if self.hierarchy is not None and self.hierarchy.audit is not None:
            self.hierarchy.audit.record(
                work.run_id,
                self.plan.agent.id,
                "call",
                scope="tool",
                target=tool,
                verdict=verdict,
                reason=reason,
            )
        self._event(
            work,
            "permission_denied",
            {"action": "call", "scope": "tool", "target": tool, "reason": reason},
        )


def _bad_args(tool: BaseTool, args: Any) -> str | None:
    """Why ``args`` do not fit the tool's argument schema (``None`` if they do)."""
    schema = tool.args_schema
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return None
    try:
        schema.model_validate(args)
    except ValidationError as exc:
        return "; ".join(error_lines(exc))
    return None


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
        text = "\n".join(f"- {k}: {json.dumps(v, default=str)}" for k, v in entries.items())
        if len(text) > chars:
            text = text[:chars] + f"\n[... more of {label} not shown; read_context reads a key]"
        parts.append(f"{label}:\n{text or '(nothing)'}")
    note = HumanMessage("Context you can read:\n\n" + "\n\n".join(parts))
    return [*messages[:1], note, *messages[1:]]


def prompt(plan: NodePlan, inbound: Inbound) -> list[BaseMessage]:
    """What the model sees: its role and instructions and the inbound payload only."""
    spec = plan.agent
    system = [f"You are {spec.role or spec.id} (agent '{spec.id}' of team '{plan.team}')."]
    if spec.instructions:
        system.append(spec.instructions.strip())
    if spec.constraints:
        system.append(
            "Constraints you must follow:\n" + "\n".join(f"- {c}" for c in spec.constraints)
        )
    system.append(
        f"Answer with one {plan.out_name} object by calling the `{plan.out_name}` "
        "tool with arguments valid for its schema."
    )
    task = f"Task from {inbound.source}: {inbound.instruction}\n\n" if inbound.instruction else ""
    human = f"{task}Input ({inbound.schema}, from {inbound.source}):\n" + payload_block(
        inbound.payload
    )
    return [SystemMessage("\n\n".join(system)), HumanMessage(human)]


def parse(
    plan: NodePlan, parser: Runnable[Any, Any], raw: Any, config: RunnableConfig
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


def feedback(plan: NodePlan, raw: Any, errors: list[str]) -> HumanMessage:
    """Tell the model what was wrong with its answer and ask again."""
    shown = ""
    if isinstance(raw, AIMessage):
        calls: list[Any] = [c["args"] for c in raw.tool_calls]
        calls += [c.get("args") for c in raw.invalid_tool_calls]
        shown = json.dumps(calls[0]) if calls else str(raw.content)
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
