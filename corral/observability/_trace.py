"""A run's trace, built after the fact from what the run already wrote.

Steps (each agent's inbound payload, output, decision, usage and duration) come from
the checkpoint history; model calls (prompt size in tokens, output tokens, cost,
latency) from the usage ledger; guard verdicts, failures, refusals, alerts and denials
from the events table; subtasks from the task board. Nothing is written on the hot
path to make a trace. (Checkpoints pruned by ``checkpoint.keep`` take their steps with
them.)
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from corral.workspace import NO_RUN_USAGE, RunUsage

MAX_SHOWN = 2_000
"""Characters of a payload kept in a trace event."""


@dataclass(frozen=True)
class TraceEvent:
    """One thing that happened in a run."""

    at: float
    kind: str
    agent: str | None
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trace(list[TraceEvent]):
    """A run's events in time order; shows itself as a table in a notebook. ``usage`` is
    the run's account in the ledger, the same one its result reports."""

    def __init__(
        self, run_id: str, events: list[TraceEvent], usage: RunUsage = NO_RUN_USAGE
    ) -> None:
        super().__init__(sorted(events, key=lambda e: (e.at, _ORDER.get(e.kind, 9))))
        self.run_id = run_id
        self.usage = usage

    def of(self, kind: str) -> list[TraceEvent]:
        """The events of one kind."""
        return [e for e in self if e.kind == kind]

    def _repr_html_(self) -> str:
        start = self[0].at if self else 0.0
        rows = "".join(
            f"<tr><td>{e.at - start:+.3f}s</td><td>{html.escape(e.kind)}</td>"
            f"<td>{html.escape(e.agent or '')}</td><td>{html.escape(e.summary)}</td></tr>"
            for e in self
        )
        return (
            f"<table><caption>trace of run {html.escape(self.run_id)}: "
            f"{html.escape(totals(self.usage))}</caption>"
            "<tr><th>t</th><th>kind</th><th>agent</th><th>what</th></tr>"
            f"{rows}</table>"
        )


def totals(usage: RunUsage) -> str:
    """A run's account in words: calls, tokens and cost."""
    cost = "unknown" if usage["cost_usd"] is None else f"{usage['cost_usd']:.4f} USD"
    return (
        f"{usage['llm_calls']} model calls, {usage['input_tokens']} input + "
        f"{usage['output_tokens']} output tokens, cost {cost}"
    )


_ORDER = {"step": 0, "subtask": 1, "llm_call": 2}


def shown(value: Any) -> str:
    """A payload as JSON, cut to ``MAX_SHOWN`` characters."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def steps(
    history: list[Any],
    input_schema: str = "input",
    joins: Mapping[str, str] | None = None,
    parallel: Mapping[str, tuple[str, str]] | None = None,
) -> list[TraceEvent]:
    """Step events from a run's checkpoint history (newest first, as LangGraph lists it).

    The first step's inbound is the flow's input (``input_schema``), read from the
    graph's input channels (every channel whose name does not start with ``_``); a join
    agent's (``joins``: its id -> its input schema) is every branch's answer it gathered.
    A parallel step's agents (``parallel``: its id -> where it hands on, and the schema)
    write no handoff unless degraded: a branch's answer is read from what it gathered
    (and a step followed by another finished).
    """
    parallel = parallel or {}
    found = []
    ordered = list(reversed(history))
    for before, after in zip(ordered, [*ordered[1:], None], strict=True):
        given = {k: v for k, v in before.values.items() if not k.startswith("_")}
        inbound = before.values.get("_handoff") or {"schema": input_schema, "payload": given}
        started = _epoch(before.created_at)
        ended = _epoch(after.created_at) if after is not None else started
        sent = before.values.get("_sent") or {}  # a parallel step's branches' inbound
        for task in before.tasks:
            seen = sent.get(task.name) or inbound
            if joins and task.name in joins and before.values.get("_joined"):
                seen = {"schema": joins[task.name], "payload": before.values["_joined"]}
            result = task.result if isinstance(task.result, dict) else {}
            handoff = result.get("_handoff") or {}
            review = result.get("_review")
            if review:
                decision = f"to review ({review.get('kind')}): {review.get('reason')}"
            elif result.get("_rejected"):
                decision = str(result["_rejected"])
            elif handoff:
                decision = f"-> {handoff.get('target')} ({handoff.get('schema')})"
            elif (  # a branch that failed, then answered on resume, answered
                task.name in parallel
                and after is not None
                and not task.interrupts
                and (result or not task.error)
            ):
                decision = "-> {} ({})".format(*parallel[task.name])
                fanned: dict[str, Any] = next(iter((after.values.get("_sent") or {}).values()), {})
                answer = (result.get("_joined") or {}).get(task.name)  # a branch's
                handoff = {"payload": fanned.get("payload") if fanned else answer}
            elif task.error:
                decision = f"error: {task.error}"
            else:
                decision = "paused" if task.interrupts else "no output"
            usage = result.get("_usage") or {}
            if task.name == "__start__":
                given = {k: v for k, v in result.items() if not k.startswith("_")}
                found.append(
                    TraceEvent(
                        at=started,
                        kind="input",
                        agent=None,
                        summary=f"input ({input_schema})",
                        detail={"input": given or handoff.get("payload")},
                    )
                )
                continue
            found.append(
                TraceEvent(
                    at=started,
                    kind="step",
                    agent=task.name,
                    summary=decision + (" [degraded]" if handoff.get("degraded") else ""),
                    detail={
                        "inbound_schema": seen.get("schema"),
                        "inbound": seen.get("payload"),
                        "output": handoff.get("payload"),
                        "decision": decision,
                        "usage": usage,
                        "seconds": round(ended - started, 6),
                    },
                )
            )
    return found


def tool_calls(rows: list[dict[str, Any]]) -> list[TraceEvent]:
    """Events for the tool calls a run made (refusals are ``permission_denied`` events)."""
    return [
        TraceEvent(
            at=float(r["at"]),
            kind="tool_call",
            agent=r["agent"],
            summary=f"{r['tool']}({shown(r['args'])[:200]}) -> "
            + (
                str(r["result"])[:200]
                if r.get("state", "done") == "done"
                else f"{r.get('state')}: {str(r['result'])[:200]}".rstrip(": ")
            ),
            detail={
                "tool": r["tool"],
                "arguments": r["args"],
                "result": r["result"],
                "state": r.get("state", "done"),
            },
        )
        for r in rows
    ]


def model_calls(rows: list[dict[str, Any]]) -> list[TraceEvent]:
    """Events for the ledger's rows of one run."""
    return [
        TraceEvent(
            at=float(r["at"]),
            kind="llm_call",
            agent=r["agent"],
            summary=f"{r['model']}: {r['input_tokens']} in / {r['output_tokens']} out tokens, "
            f"{r['latency_ms']:.0f} ms" + ("" if r["status"] == "settled" else f" ({r['status']})"),
            detail=r,  # with ``content``: what the team's trace policy keeps of prompt and answer
        )
        for r in rows
    ]


def recorded(rows: list[dict[str, Any]]) -> list[TraceEvent]:
    """Events for the run's rows of the events table."""
    out = []
    for row in rows:
        detail = {k: v for k, v in row.items() if k not in ("kind", "agent", "at")}
        text = (
            detail.get("message")
            or detail.get("reason")
            or ", ".join(f"{k}={v}" for k, v in detail.items() if not isinstance(v, list | dict))
        )
        out.append(
            TraceEvent(
                at=_epoch(row["at"]),
                kind=row["kind"],
                agent=row["agent"],
                summary=str(text)[:300],
                detail=detail,
            )
        )
    return out


def subtasks(tasks: list[Any]) -> list[TraceEvent]:
    """Events for the run's tasks on the board."""
    return [
        TraceEvent(
            at=t.created_at,
            kind="subtask",
            agent=t.assignee,
            summary=f"depth {t.depth} {t.status}: {t.instruction[:120]}",
            detail={
                "task_id": t.id,
                "parent": t.parent_id,
                "status": t.status,
                "payload": t.payload,
                "result": t.result,
                "error": t.error,
            },
        )
        for t in tasks
    ]
