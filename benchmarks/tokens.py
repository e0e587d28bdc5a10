"""Input tokens of the support desk: corral against a minimal hand-written LangGraph team.

Both teams run the same ticket on the scripted model, through the same flow (intake
rules, triage, a specialist, the refund policy, QA, the reply writer). The hand-written
one is what a careful engineer would write with LangGraph alone: per agent a system
message with its role, instructions and constraints, the inbound payload as compact
JSON, and ``with_structured_output`` for its output schema (pydantic models written
by hand below). The payload sits in a fenced block on both sides, as the scripted
model reads it, so both teams get the same answers and hand on the same payloads.

A callback records every request as the model receives it: the messages and the
bound tools, which include the structured-output schema. Both sides are counted the
same way, what a provider would see (``count_request``): OpenAI's ``o200k_base``
encoding (from ``bpe-openai``, which ships the encoding file; ``tiktoken`` downloads
it at run time) over each message's role and content, each tool call's name and
arguments, plus 3 tokens a message and 3 for the reply, and the tools as compact JSON.
The scripted model's own count (about 4 characters a token) is printed beside it.

    python benchmarks/tokens.py [--ticket examples/support_desk/ticket.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, TypedDict

from bpe_openai import get_encoding
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import LLMResult
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from corral import ScriptedChatModel, load_team

ROOT = Path(__file__).resolve().parent.parent
DESK = ROOT / "examples" / "support_desk"
ENCODING = get_encoding("o200k_base")
ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def count_request(messages: list[BaseMessage], tools: list[dict[str, Any]] | None) -> int:
    """Input tokens of one request: messages (role, content, tool calls) and tools."""
    tokens = 3  # the reply's priming
    for message in messages:
        content = (
            message.content if isinstance(message.content, str) else json.dumps(message.content)
        )
        tokens += 3 + len(ENCODING.encode(ROLES.get(message.type, message.type)))
        tokens += len(ENCODING.encode(content))
        for call in message.tool_calls if isinstance(message, AIMessage) else []:
            tokens += len(ENCODING.encode(call["name"] + json.dumps(call["args"])))
    if tools:
        tokens += len(ENCODING.encode(json.dumps(tools, separators=(",", ":"))))
    return tokens


class Requests(BaseCallbackHandler):
    """Records each chat model request: the node it came from, messages, tools, usage."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        params = kwargs.get("invocation_params") or {}
        metadata = kwargs.get("metadata") or {}
        self.calls.append(
            {
                "agent": metadata.get("langgraph_node", "?"),
                "messages": messages[0],
                "tools": params.get("tools"),
                "tokens": count_request(messages[0], params.get("tools")),
            }
        )

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        message = getattr(response.generations[0][0], "message", None)
        usage = getattr(message, "usage_metadata", None) or {}
        self.calls[-1]["scripted"] = usage.get("input_tokens", 0)

    def by_agent(self) -> dict[str, tuple[int, int]]:
        """(o200k tokens, scripted-model tokens) per agent, summed over its calls."""
        out: dict[str, tuple[int, int]] = {}
        for call in self.calls:
            o200k, scripted = out.get(call["agent"], (0, 0))
            out[call["agent"]] = (o200k + call["tokens"], scripted + call.get("scripted", 0))
        return out


# --- the hand-written LangGraph team ------------------------------------------------


class Ticket(BaseModel):
    """A customer's message as it arrives."""

    customer: str = Field(min_length=1, max_length=120)
    subject: str = Field(min_length=3, max_length=200)
    body: str = Field(min_length=1, max_length=5000)
    plan: Literal["free", "pro", "enterprise"] = "free"


class Triage(BaseModel):
    ticket_id: str
    subject: str
    category: Literal["billing", "technical", "account"]
    urgency: Literal["low", "normal", "high"]
    summary: str = Field(min_length=5, max_length=400)


class Resolution(BaseModel):
    ticket_id: str
    subject: str
    category: Literal["billing", "technical", "account"]
    summary: str = Field(min_length=5, max_length=400)
    actions: list[str] = Field(min_length=1, max_length=5)
    refund_usd: float = Field(ge=0, le=1000)


class Review(BaseModel):
    ticket_id: str
    subject: str
    approved: bool
    confidence: float = Field(ge=0, le=1)
    notes: str = Field(max_length=400)
    summary: str
    actions: list[str]


class Reply(BaseModel):
    ticket_id: str
    subject: str = Field(max_length=200)
    body: str = Field(min_length=20, max_length=4000)
    tone: Literal["friendly", "formal"]


class Desk(TypedDict):
    payload: dict[str, Any]


def _rules() -> Any:
    spec = importlib.util.spec_from_file_location("desk_rules", DESK / "rules.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hand_written(model: ScriptedChatModel) -> Any:
    """The support desk in plain LangGraph: the same agents, flow and functions."""
    rules = _rules()

    def agent(role: str, instructions: str, schema: type[BaseModel], rules: str = "") -> Any:
        ask = model.with_structured_output(schema)
        system = f"You are {role}. {instructions}{rules}"

        def node(state: Desk) -> Desk:
            payload = json.dumps(state["payload"], separators=(",", ":"), ensure_ascii=False)
            answer = ask.invoke([SystemMessage(system), HumanMessage(f"```json\n{payload}\n```")])
            assert isinstance(answer, BaseModel)
            return {"payload": answer.model_dump()}

        return node

    graph = StateGraph(Desk)
    graph.add_node("intake", lambda s: {"payload": rules.intake(Ticket(**s["payload"]))})
    graph.add_node(
        "triage",
        agent(
            "Support triage lead",
            "Classify the case by category and urgency and summarise it in one sentence.",
            Triage,
            " Never promise refunds. Use only the case's own facts.",
        ),
    )
    graph.add_node(
        "billing",
        agent(
            "Billing specialist",
            "Resolve billing problems; propose a refund only for a verified double charge.",
            Resolution,
        ),
    )
    graph.add_node(
        "technical",
        agent(
            "Technical support engineer",
            "Diagnose the problem and list concrete steps for the customer.",
            Resolution,
        ),
    )
    graph.add_node(
        "refund_policy",
        lambda s: {"payload": rules.refund_policy(Resolution(**s["payload"]))},
    )
    graph.add_node(
        "qa",
        agent(
            "Quality reviewer",
            "Check that the resolution answers the case and follows policy.",
            Review,
        ),
    )
    graph.add_node(
        "writer",
        agent(
            "Reply writer",
            "Write a clear, kind reply to the customer from the reviewed resolution.",
            Reply,
        ),
    )
    graph.add_edge(START, "intake")
    graph.add_edge("intake", "triage")
    graph.add_conditional_edges(
        "triage",
        lambda s: "billing" if s["payload"]["category"] == "billing" else "technical",
        ["billing", "technical"],
    )
    graph.add_edge("billing", "refund_policy")
    graph.add_edge("refund_policy", "qa")
    graph.add_edge("technical", "qa")
    graph.add_edge("qa", "writer")
    graph.add_edge("writer", END)
    return graph.compile()


# --- the comparison -------------------------------------------------------------------


def run_corral(ticket: dict[str, Any]) -> tuple[Requests, dict[str, Any]]:
    """The support desk through corral, its requests recorded."""
    seen = Requests()
    with tempfile.TemporaryDirectory() as folder:
        team = load_team(DESK / "team.yaml")
        with team.compile(db=Path(folder) / "w.db") as app:
            result = app.run(ticket, config={"callbacks": [seen]})
    assert result.status == "completed", result.status
    return seen, dict(result.output or {})


def run_langgraph(ticket: dict[str, Any]) -> tuple[Requests, dict[str, Any]]:
    """The hand-written team, its requests recorded."""
    seen = Requests()
    state = hand_written(ScriptedChatModel()).invoke(
        {"payload": ticket}, config={"callbacks": [seen]}
    )
    return seen, state["payload"]


def measure(ticket: dict[str, Any]) -> dict[str, Any]:
    """Per-agent and total input tokens of one run on each side, and their ratios."""
    corral, corral_out = run_corral(ticket)
    plain, plain_out = run_langgraph(ticket)
    ours, theirs = corral.by_agent(), plain.by_agent()
    agents = list(dict.fromkeys([*theirs, *ours]))
    rows = {a: (ours.get(a, (0, 0)), theirs.get(a, (0, 0))) for a in agents}
    total = sum(o[0] for o, _ in rows.values()), sum(t[0] for _, t in rows.values())
    scripted = sum(o[1] for o, _ in rows.values()), sum(t[1] for _, t in rows.values())
    return {
        "rows": rows,
        "total": total,
        "scripted": scripted,
        "ratio": total[0] / total[1],
        "same_output": corral_out == plain_out,
        "calls": (len(corral.calls), len(plain.calls)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticket", type=Path, default=DESK / "ticket.json")
    args = parser.parse_args()
    ticket = json.loads(args.ticket.read_text(encoding="utf-8"))
    found = measure(ticket)
    print(f"load average {os.getloadavg()[0]:.2f} (token counts do not depend on it)")
    print(f"support desk, {args.ticket.name}: input tokens per run (o200k_base)")
    print(f"{'agent':<12} {'corral':>8} {'LangGraph':>10} {'ratio':>7}")
    for agent, (ours, theirs) in found["rows"].items():
        ratio = f"{ours[0] / theirs[0]:.2f}x" if theirs[0] else "-"
        print(f"{agent:<12} {ours[0]:>8} {theirs[0]:>10} {ratio:>7}")
    ours, theirs = found["total"]
    print(f"{'total':<12} {ours:>8} {theirs:>10} {found['ratio']:>6.2f}x  (target <= 1.10x)")
    s_ours, s_theirs = found["scripted"]
    print(
        f"scripted model's own count: {s_ours} vs {s_theirs} ({s_ours / s_theirs:.2f}x); "
        f"model calls {found['calls'][0]} vs {found['calls'][1]}; "
        f"same reply: {found['same_output']}"
    )


if __name__ == "__main__":
    main()
