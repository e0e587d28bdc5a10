"""An agent's own tools: refused before any effect unless the agent may call them, sent
to a person first where review is required, recorded before and after they run, and never
run again blindly when a crash left a call in doubt."""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from typing import Any

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables.config import merge_configs
from langchain_core.tools import BaseTool
from opentelemetry.trace import Span
from pydantic import BaseModel, ValidationError

from corral.errors import EffectInDoubt
from corral.guards import repeat_trip
from corral.keys import IDEMPOTENCY_KEY
from corral.manifest import AgentPlan, ToolPlan, error_lines
from corral.nodes._base import Call, Steps, Work, io
from corral.nodes._services import Services
from corral.observability import current, emit, tool_said
from corral.review import ask_person
from corral.workspace import Started, call_slot, idempotency_key


class ToolRunner:
    """Runs the tool calls one agent's model asks for."""

    def __init__(self, plan: AgentPlan, tools: Mapping[str, ToolPlan], services: Services) -> None:
        self.plan = plan
        self.tools = dict(tools)
        self.services = services

    def run(self, call: ToolCall, work: Work, index: int) -> Generator[Call, Any, ToolMessage]:
        """``_run`` within an ``execute_tool`` span."""
        with current(self._span(work, call["name"], call.get("id") or "")):
            return (yield from self._run(call, work, index))

    def _looping(
        self, work: Work, name: str, args: Any, call_id: str
    ) -> Generator[Call, Any, ToolMessage | None]:
        """Refuse a call repeated past ``max_repeats`` before any effect (halt: end the run)."""
        loop = repeat_trip(
            self.plan.id, work.repeats, f"tool {name!r}", args, self.plan.max_repeats
        )
        if loop is None:
            return None
        policy = self.plan.policy("max_repeats")
        yield io(self.services.verdicts.trip, work.run_id, loop, policy)
        self._said(work, name, args, "denied", str(loop))
        if policy == "halt":
            raise loop
        return ToolMessage(
            f"refused: {loop}. Use the results you have.", tool_call_id=call_id, status="error"
        )

    def _span(self, work: Work, tool: str, call_id: str) -> Span:
        return self.services.spans.tool(work.span, self.plan.id, work.run_id, tool, call_id)

    def _run(self, call: ToolCall, work: Work, index: int) -> Generator[Call, Any, ToolMessage]:
        """Run one tool call the model asked for, if the agent may, exactly once.

        Refused before any effect (and audited): a tool the agent does not have, or one
        needing a capability it lacks. A tool that requires review waits for a person.
        A call already made (same run, task, position, tool and arguments) is answered
        from its recorded result.
        """
        agent = self.plan.spec
        name, args, call_id = call["name"], call["args"], call.get("id") or ""
        held = self.tools.get(name)
        tool = held.tool if held is not None else None
        granted = agent.permissions.granted
        missing = [flag for flag in (held.requires if held else ()) if flag not in granted]
        invalid = _bad_args(tool, args) if tool is not None and not missing else None
        if tool is None or missing or invalid:
            reason = (
                f"not one of {agent.id!r}'s tools ({', '.join(sorted(self.tools))})"
                if tool is None
                else f"it requires {', '.join(missing)}"
                if missing
                else f"invalid arguments: {invalid}"
            )
            yield from self._audit(work, name, "denied", reason)
            self._said(work, name, args, "denied", reason)
            return ToolMessage(f"refused: {name!r}: {reason}", tool_call_id=call_id, status="error")
        looping = yield from self._looping(work, name, args, call_id)
        if looping is not None:
            return looping
        if (held is not None and held.requires_review) or agent.permissions.requires_review:
            decision = ask_person(
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
                rejected = f"rejected by a reviewer: {decision.get('reason')}"
                yield from self._audit(work, name, "denied", rejected)
                self._said(work, name, args, "denied", rejected)
                return ToolMessage(
                    f"refused by a reviewer: {decision.get('reason')}",
                    tool_call_id=call_id,
                    status="error",
                )
            if decision.get("action") == "edit":
                args = decision.get("payload") or args
        calls = self.services.tool_calls
        key = idempotency_key(work.run_id, work.key, index, name, args)
        done = yield io(calls.recorded, key)
        if done is not None:
            self._said(work, name, args, "replayed", done)
            return ToolMessage(done, tool_call_id=call_id)
        slot = call_slot(work.run_id, work.key, index)
        doubt = yield io(calls.in_doubt, slot)
        if doubt is not None:
            settled = yield from self._in_doubt(doubt, work, call_id)
            if isinstance(settled, ToolMessage):
                return settled
            name, args = settled
            tool = self.tools[name].tool
            key = idempotency_key(work.run_id, work.key, index, name, args)
            if key != doubt.key:  # the person changed the call: the old one is settled
                yield io(self._settle, doubt, work, "superseded by an edited call")
        yield io(
            calls.begin, key, slot=slot, run_id=work.run_id, agent=agent.id, tool=name, args=args
        )
        config = merge_configs(work.config, {"metadata": {IDEMPOTENCY_KEY: key}})
        try:
            result = yield Call(tool, {**call, "name": name, "args": args}, config)
        except Exception as exc:  # the model sees the failure and may try otherwise
            error = f"{type(exc).__name__}: {exc}"
            yield io(calls.failed, key, error)
            self._said(work, name, args, "failed", error)
            return ToolMessage(f"error: {error}", tool_call_id=call_id, status="error")
        message = (
            result
            if isinstance(result, ToolMessage)
            else ToolMessage(str(result), tool_call_id=call_id)
        )
        yield io(
            calls.record,
            key,
            run_id=work.run_id,
            agent=agent.id,
            tool=name,
            args=args,
            result=str(message.content),
        )
        self._said(work, name, args, "ran", str(message.content))
        return message

    def _in_doubt(
        self, doubt: Started, work: Work, call_id: str
    ) -> Generator[Call, Any, ToolMessage | tuple[str, Any]]:
        """Decide about a call a crash left started and unfinished: the (tool, arguments)
        to run again, or the message for the model when it is not run again.

        An idempotent tool runs again with the same key. Otherwise its ``on_in_doubt``
        decides: ``review`` asks a person (approve or edit: run again; reject: not run),
        ``fail`` fails the run. It is never run again without one of these.
        """
        held = self.tools.get(doubt.tool)
        # a tool the agent no longer holds cannot be run again: the run fails
        policy = "fail" if held is None else "rerun" if held.idempotent else held.on_in_doubt
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doubt.at))
        self._said(work, doubt.tool, doubt.args, "in_doubt", f"started {when}; then: {policy}")
        yield io(
            self.services.verdicts.record,
            work.run_id,
            "tool_in_doubt",
            self.plan.id,
            {"tool": doubt.tool, "key": doubt.key, "started_at": doubt.at, "then": policy},
        )
        if policy == "rerun":
            return doubt.tool, doubt.args
        if policy == "fail":
            raise EffectInDoubt(
                agent=self.plan.id, tool=doubt.tool, key=doubt.key, started_at=doubt.at
            )
        decision = ask_person(
            {
                "kind": "in_doubt",
                "source": self.plan.id,
                "target": doubt.tool,
                "schema": f"tool:{doubt.tool}",
                "payload": doubt.args,
                "reason": (
                    f"{self.plan.id!r} started {doubt.tool!r} at {when} and a crash stopped it "
                    "before it finished: its effect may or may not have happened. Approve or "
                    "edit to run it again; reject (saying what happened) to not run it again"
                ),
            }
        )
        if decision.get("action") == "reject":
            said = f"not run again after a crash; a reviewer said: {decision.get('reason')}"
            yield io(self._settle, doubt, work, said)
            self._said(work, doubt.tool, doubt.args, "skipped", said)
            return ToolMessage(
                f"{doubt.tool!r} was started before a crash and its effect may have happened; "
                f"it was {said}",
                tool_call_id=call_id,
            )
        if decision.get("action") == "edit":
            return doubt.tool, decision.get("payload") or doubt.args
        return doubt.tool, doubt.args

    def _settle(self, doubt: Started, work: Work, result: str) -> None:
        self.services.tool_calls.record(
            doubt.key,
            run_id=work.run_id,
            agent=self.plan.id,
            tool=doubt.tool,
            args=doubt.args,
            result=result,
        )

    def _said(self, work: Work, tool: str, args: Any, verdict: str, result: str) -> None:
        """Stream a ``tool_call`` event; the verdict goes on the call's span."""
        tool_said(verdict, result)
        emit(
            {
                "kind": "tool_call",
                "run_id": work.run_id,
                "at": self.services.clock(),
                "agent": self.plan.id,
                "tool": tool,
                "arguments": args,
                "verdict": verdict,
                "result": result[:500],
            }
        )

    def refuse(self, work: Work, tool: str, args: Any, reason: str, call_id: str = "") -> Steps:
        """Refuse a tool call the model made where it may not: audited, an event, streamed."""
        with current(self._span(work, tool, call_id)):
            yield from self._audit(work, tool, "denied", reason)
            self._said(work, tool, args, "denied", reason)

    def _audit(self, work: Work, tool: str, verdict: str, reason: str) -> Steps:
        yield io(
            self.services.audit.record,
            work.run_id,
            self.plan.id,
            "call",
            scope="tool",
            target=tool,
            verdict=verdict,
            reason=reason,
        )
        yield io(
            self.services.verdicts.record,
            work.run_id,
            "permission_denied",
            self.plan.id,
            {"action": "call", "scope": "tool", "target": tool, "reason": reason},
        )


def _bad_args(tool: BaseTool, args: Any) -> str | None:
    """Why ``args`` do not fit the tool's argument schema (``None`` if they do)."""
    schema = tool.args_schema
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return None
    unknown = sorted(set(args) - set(schema.model_fields)) if isinstance(args, dict) else []
    if unknown:  # never dropped silently: an extra argument may try to act as someone else
        return f"unknown argument(s) {', '.join(map(repr, unknown))}"
    try:
        schema.model_validate(args)
    except ValidationError as exc:
        return "; ".join(error_lines(exc))
    return None
