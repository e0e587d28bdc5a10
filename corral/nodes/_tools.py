"""An agent's own tools: refused before any effect unless the agent may call them, sent
to a person first where review is required, and run exactly once per idempotency key."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables.config import merge_configs
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError

from corral.keys import IDEMPOTENCY_KEY
from corral.manifest import AgentPlan, ToolPlan, error_lines
from corral.nodes._base import Call, Steps, Work, io
from corral.nodes._services import Services
from corral.observability import emit
from corral.review import ask_person
from corral.workspace import idempotency_key


class ToolRunner:
    """Runs the tool calls one agent's model asks for."""

    def __init__(self, plan: AgentPlan, tools: Mapping[str, ToolPlan], services: Services) -> None:
        self.plan = plan
        self.tools = dict(tools)
        self.services = services

    def run(self, call: ToolCall, work: Work, index: int) -> Generator[Call, Any, ToolMessage]:
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
        missing = [
            flag
            for flag in (held.requires if held else ())
            if not getattr(agent.permissions, flag, False)
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
            yield from self._audit(work, name, "denied", reason)
            self._said(work, name, args, "denied", reason)
            return ToolMessage(f"refused: {name!r}: {reason}", tool_call_id=call_id, status="error")
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
        config = merge_configs(work.config, {"metadata": {IDEMPOTENCY_KEY: key}})
        try:
            result = yield Call(tool, {**call, "args": args}, config)
        except Exception as exc:  # the model sees the failure and may try otherwise
            self._said(work, name, args, "failed", f"{type(exc).__name__}: {exc}")
            return ToolMessage(
                f"error: {type(exc).__name__}: {exc}", tool_call_id=call_id, status="error"
            )
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

    def _said(self, work: Work, tool: str, args: Any, verdict: str, result: str) -> None:
        """Stream a ``tool_call`` event."""
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

    def refuse(self, work: Work, tool: str, args: Any, reason: str) -> Steps:
        """Refuse a tool call the model made where it may not: audited, an event, streamed."""
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
