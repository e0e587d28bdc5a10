"""The agent runner: one model-driven agent answering one piece of work.

The prompt holds the agent's role, instructions and constraints and the inbound
payload (plus, for a subtask, the delegator's instruction), never a transcript. The
model may call the agent's own tools, then answers with its output schema; an invalid
answer is fed back a bounded number of times. A supervisor may instead call
``delegate``: see ``_delegation``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Generator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableBinding
from langchain_core.utils.function_calling import convert_to_openai_tool

from corral.context import context_tools
from corral.errors import BreakerOpen, CorralError, GuardTripped, HandoffError, NodeError, RunError
from corral.guards import Meter, backoff, calls_trip, deadline_trip, is_transient, time_left
from corral.manifest import AgentPlan, ToolPlan, validate
from corral.nodes._base import Call, Delegator, Inbound, Pause, Runner, Steps, Work, io
from corral.nodes._prompt import feedback, parse, prompt, split_structured, usage_of, with_context
from corral.nodes._services import Services
from corral.nodes._state import NO_USAGE, Usage, add_usage
from corral.nodes._tools import ToolRunner
from corral.observability import answered, current, emit, listened
from corral.workspace import reply_key

Answer = tuple[dict[str, Any], Usage]


class AgentRunner:
    """Runs one agent; ``answer`` is a generator of ``Call``s returning (payload, usage)."""

    def __init__(
        self,
        plan: AgentPlan,
        model: BaseChatModel,
        services: Services,
        meter: Meter,
        *,
        delegation: Delegator | None = None,
        fallback: Runner | None = None,
        with_tools: bool = True,
        breaker: bool = True,
    ) -> None:
        self.plan = plan
        self.breaker = plan.breaker if breaker else None
        """The agent's breaker, which its fallback (``breaker=False``) goes past."""
        self.services = services
        self.meter = meter
        self.fallback = fallback
        self.delegation = delegation
        cap = plan.budget.max_output_tokens
        bound = {"max_tokens": cap} if cap else {}
        ask, self.parser = split_structured(model, plan.out_schema)
        self.ask = _schema_made_once(ask)
        if cap:
            self.ask = self.ask.bind(max_tokens=cap)
        tools = {t.name: t for t in plan.tools} if with_tools else {}
        if with_tools and plan.identity is not None:
            held = context_tools(services.context, plan.identity)
            tools |= {name: ToolPlan(name, tool) for name, tool in held.items()}
        self.tools = ToolRunner(plan, tools, services)
        self.with_tools = (
            model.bind_tools([t.tool for t in tools.values()]).bind(**bound) if tools else None
        )
        self.supervise = (
            model.bind_tools([plan.out_schema, delegation.tool], tool_choice="any").bind(**bound)
            if delegation
            else None
        )

    def answer(self, inbound: Inbound, work: Work) -> Steps:
        """Answer ``inbound``; if the agent fails (or its breaker is open), its fallback
        answers instead, flagged as degraded; with no fallback the failure goes on up."""
        agent = self.plan.id
        breaker = self.breaker
        breakers = self.services.breakers
        verdict = (yield io(breakers.admit, agent, breaker)) if breaker else "closed"
        spent = len(work.spent)
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
            opened = breaker and not isinstance(exc, BreakerOpen)
            if opened and (yield io(breakers.failed, agent, breaker)):
                assert breaker is not None
                yield from self._event(work, "breaker_opened", {"failures": breaker.failures})
            yield from self._failure(work, 0, exc, "fallback" if self.fallback else "escalate")
            if self.fallback is None:
                raise
            failed = functools.reduce(add_usage, work.spent[spent:], NO_USAGE)
            payload, used = yield from self.fallback.answer(inbound, work)
            work.flags["degraded"] = True
            return payload, add_usage(used, failed)  # the step used both
        if breaker and verdict == "probe" and (yield io(breakers.succeeded, agent)):
            yield from self._event(work, "breaker_closed", {})
        return result

    def _event(self, work: Work, kind: str, data: dict[str, Any]) -> Steps:
        yield io(self.services.verdicts.record, work.run_id, kind, self.plan.id, data)

    def _failure(self, work: Work, attempt: int, exc: BaseException, then: str) -> Steps:
        """Record a failure: which attempt, what went wrong, what happens next."""
        yield from self._event(
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
        messages = prompt(self.plan, inbound, delegates=self.delegation is not None)
        if self.plan.identity is not None:
            messages = yield io(
                with_context,
                messages,
                self.services.context,
                self.plan.identity,
                work.run_id,
                self.services.prompt_chars,
            )
        usage = NO_USAGE
        if self.with_tools is not None:
            messages, usage = yield from self._use_tools(self.with_tools, messages, work)
        if self.supervise is not None:
            result: Answer = yield from self._supervise(self.supervise, messages, usage, work)
            return result
        errors: list[str] = []
        unusable: list[str] = []
        for _ in range(self.plan.retries + 1):
            raw = yield from self._ask(self.ask, messages, work)
            usage = add_usage(usage, usage_of(raw))
            yield from self._stray_calls(raw, work, {self.plan.out_name})
            payload, errors = parse(self.plan, self.parser, raw, work.config)
            if payload is not None:
                return payload, usage
            unusable.append(work.asked[-1])
            messages = [*messages, feedback(self.plan, raw, errors)]
        yield io(self.services.ledger.forget, unusable)  # a resumed run asks again
        raise HandoffError(
            agent=self.plan.id,
            schema=self.plan.out_name,
            errors=errors,
            attempts=self.plan.retries + 1,
        )

    def _supervise(
        self, model: Runnable[Any, Any], messages: list[BaseMessage], usage: Usage, work: Work
    ) -> Generator[Call, Any, Answer]:
        """Answer, or delegate to direct reports and read their results, until an answer."""
        assert self.delegation is not None
        plan, agent = self.plan, self.plan.id
        failures, rounds = 0, 0
        errors: list[str] = []
        unusable: list[str] = []
        below = NO_USAGE  # what the subtasks spent: counted in the answer, not in own calls
        while True:
            raw = yield from self._ask(model, messages, work)
            usage = add_usage(usage, usage_of(raw))
            call = raw.tool_calls[0] if isinstance(raw, AIMessage) and raw.tool_calls else None
            # any other tool it called beside its answer or delegation is refused, audited
            yield from self._stray_calls(raw, work, {plan.out_name, self.delegation.tool.__name__})
            if call is not None and call["name"] == self.delegation.tool.__name__:
                outcome, spent = yield from self.delegation.delegate(call["args"], work, rounds)
                rounds += 1
                below = add_usage(below, spent)
                messages = [*messages, raw, ToolMessage(outcome, tool_call_id=call["id"] or "")]
                continue
            if call is not None and call["name"] == plan.out_name:
                payload, errors = validate(plan.out_schema, call["args"])
                if payload is not None:
                    return payload, add_usage(usage, below)
            else:
                errors = [f"call `{plan.out_name}` to answer or `delegate` to hand out work"]
            failures += 1
            unusable.append(work.asked[-1])
            if failures > plan.retries:
                yield io(self.services.ledger.forget, unusable)  # a resumed run asks again
                raise HandoffError(
                    agent=agent, schema=plan.out_name, errors=errors, attempts=failures
                )
            messages = [*messages, feedback(plan, raw, errors)]

    def _stray_calls(self, raw: Any, work: Work, allowed: set[str]) -> Steps:
        """Refuse (and audit) tool calls where only an answer (or a delegation) may come."""
        for call in raw.tool_calls if isinstance(raw, AIMessage) else []:
            if call["name"] not in allowed:
                reason = f"{self.plan.id!r} may only answer with `{self.plan.out_name}` here" + (
                    " or `delegate`" if self.delegation is not None else ""
                )
                yield from self.tools.refuse(
                    work, call["name"], call["args"], reason, call.get("id") or ""
                )

    def _ask(
        self, model: Runnable[Any, Any], messages: list[BaseMessage], work: Work
    ) -> Generator[Call, Any, Any]:
        """One model call, within the agent's calls per task (those the task made so far,
        a failed one and its fallback model's included); a provider's error becomes a
        ``NodeError`` naming the agent."""
        agent = self.plan.id
        trip = calls_trip(agent, len(work.asked), self.plan.max_calls)
        if trip is not None:  # under escalate a subtask's trip goes back to its supervisor
            policy = self.plan.policy("max_llm_calls_per_task")
            yield io(self.services.verdicts.trip, work.run_id, trip, policy)
            raise trip
        key = reply_key(work.run_id, work.key, len(work.asked))
        work.asked.append(key)
        found = yield io(self.services.ledger.reply, key)
        if found is not None and found.settled:  # finished before this task re-ran: no call
            work.spent.append(usage_of(found.answer))
            return found.answer
        if found is not None and found.reserved is not None:  # a crash cut it short
            yield io(self.meter.release, found.reserved)
        spec = self.plan.retry
        for attempt in range(1, spec.max_attempts + 1):
            late = deadline_trip(
                work.deadline,
                self.services.clock(),
                agent=agent,
                doing=f"{agent!r} was to call its model",
            )
            if late is not None:
                yield io(
                    self.services.verdicts.trip,
                    work.run_id,
                    late,
                    self.plan.policy("run_deadline_seconds"),
                )
                raise late
            try:
                raw = yield from self._metered(
                    model, messages, work, spec.timeout, attempt, key=key
                )
                work.spent.append(usage_of(raw))
                return raw
            except CorralError:
                raise
            except Exception as exc:
                if not is_transient(exc) or attempt == spec.max_attempts:
                    yield from self._failure(work, attempt, exc, "give up")
                    reason = (
                        "not retryable" if not is_transient(exc) else f"after {attempt} attempts"
                    )
                    raise NodeError(
                        f"model call of agent {agent!r} failed ({reason}): "
                        f"{type(exc).__name__}: {exc}",
                        agent=agent,
                    ) from exc
                wait = backoff(spec, attempt, exc)
                left = time_left(work.deadline, self.services.clock())
                wait = wait if left is None else min(wait, left)  # the deadline cuts it short
                yield from self._failure(work, attempt, exc, f"retry in {wait:.3f} s")
                yield Call(Pause(wait))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _metered(
        self,
        model: Runnable[Any, Any],
        messages: list[BaseMessage],
        work: Work,
        timeout: float | None,
        attempt: int = 1,
        *,
        key: str | None = None,
    ) -> Generator[Call, Any, Any]:
        """Reserve, call, settle (or release if the call fails), within a ``chat`` span;
        a ``model_call`` event. ``key``: the call's reply key (its answer is kept)."""
        row = None
        if self.meter.limited:  # counting, trimming and reserving read the ledger
            messages, row = yield io(self.meter.before, model, messages, work.run_id, work.key, key)
        span = self.services.spans.chat(
            work.span, self.plan.id, work.run_id, self.meter.model_label, attempt
        )
        with current(span):
            started = time.perf_counter()
            try:
                raw = yield Call(model, messages, work.config, timeout=timeout)
            except GeneratorExit:  # the run is torn down (cancelled; async: off the loop,
                # see Node.ainvoke): give the reservation back
                if row is not None:
                    self.meter.release(row)
                raise
            except Exception as exc:
                if row is not None:
                    yield io(self.meter.release, row)
                self._called(
                    work,
                    attempt=attempt,
                    model=self.meter.model_label,
                    raw=None,
                    started=started,
                    error=exc,
                )
                raise
            latency = (time.perf_counter() - started) * 1e3
            model_name, cost = yield io(
                self.meter.after,
                row,
                messages,
                raw,
                latency,
                run_id=work.run_id,
                task_key=work.key,
                call=key,
            )
            answered(span, model_name, usage_of(raw), cost)
            self._called(
                work,
                attempt=attempt,
                model=model_name,
                raw=raw,
                started=started,
                error=None,
                cost=cost,
            )
        return raw

    def _called(
        self,
        work: Work,
        *,
        attempt: int,
        model: str,
        raw: Any,
        started: float,
        error: BaseException | None,
        cost: float | None = None,
    ) -> None:
        """Stream a ``model_call`` event (and count a failed one)."""
        if error is not None:
            self.services.metrics.call_errors.labels(
                self.plan.id, model, type(error).__name__
            ).inc()
        if not listened():  # an event no one will see is not made
            return
        used = usage_of(raw) if raw is not None else NO_USAGE
        emit(
            {
                "kind": "model_call",
                "run_id": work.run_id,
                "at": self.services.clock(),
                "agent": self.plan.id,
                "model": model,
                "attempt": attempt,
                "status": "ok" if error is None else "error",
                "input_tokens": used["input_tokens"],
                "output_tokens": used["output_tokens"],
                "cost_usd": cost,
                "latency_ms": round((time.perf_counter() - started) * 1e3, 3),
                "error": None if error is None else f"{type(error).__name__}: {error}"[:500],
            }
        )

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
            answer = yield from self._ask(model, messages, work)
            usage = add_usage(usage, usage_of(answer))
            messages = [*messages, answer]
            if not isinstance(answer, AIMessage) or not answer.tool_calls:
                return messages, usage
            for call in answer.tool_calls:
                messages.append((yield from self.tools.run(call, work, index)))
                index += 1
        note = HumanMessage("No more tool calls: answer now with what you have.")
        return [*messages, note], usage


def _schema_made_once(ask: Runnable[Any, Any]) -> Runnable[Any, Any]:
    """``ask`` with its tracing metadata's output schema converted now, not per call.

    ``with_structured_output`` binds ``ls_structured_output_format`` holding the pydantic
    class, and langchain-core turns that class into JSON Schema on every model call
    (for tracing only). Given the OpenAI tool dict instead, it makes the same metadata
    without rebuilding it; the model, its tools and the parse are unchanged.
    """
    if not isinstance(ask, RunnableBinding):
        return ask
    traced = ask.kwargs.get("ls_structured_output_format")
    if not isinstance(traced, dict) or not isinstance(traced.get("schema"), type):
        return ask
    made = {**traced, "schema": convert_to_openai_tool(traced["schema"])}
    return ask.bind(ls_structured_output_format=made)
