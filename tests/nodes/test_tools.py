"""Agents call their own tools before answering; other tools are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import ToolCall, ToolMessage

from corral import ScriptedChatModel, load_team
from corral.keys import AGENT_KEY
from tests.conftest import SeenMessages

TEAM = """\
version: 1
name: lookup
models:
  default: {{use: scripted, script: script.yaml}}
schemas:
  Question: {{fields: {{invoice_id: str}}}}
  Answer: {{fields: {{invoice_id: str, status: str}}}}
tools:
  invoice_status: {{import: "tools:invoice_status"}}
agents:
  - {{id: clerk, role: Billing clerk, tools: [invoice_status]}}
flow:
  entry: clerk
  input: Question
  output: Answer
  edges: [{{from: clerk, to: END, schema: Answer}}]
guards: {{max_tool_rounds: {rounds}{guards}}}
"""

TOOLS = '''\
from langchain_core.tools import tool

CALLS = []


@tool
def invoice_status(invoice_id: str) -> str:
    """The payment status of an invoice."""
    CALLS.append(invoice_id)
    if invoice_id == "boom":
        raise RuntimeError("billing system down")
    return f"{invoice_id}: paid twice"
'''


def run(
    write: Callable[..., Path],
    tmp_path: Path,
    script: str,
    invoice: str = "INV-7",
    rounds: int = 5,
    *,
    guards: str = "",
) -> tuple[Any, SeenMessages, list[str]]:
    write("tools.py", TOOLS)
    write("script.yaml", script)
    team = load_team(
        write("team.yaml", TEAM.format(rounds=rounds, guards=guards and ", " + guards))
    )
    seen = SeenMessages()
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"invoice_id": invoice}, config={"callbacks": [seen]})
    module = next(iter(team.resolved.tools.values())).func.__globals__  # type: ignore[attr-defined]
    calls: list[str] = module["CALLS"]
    return result, seen, calls


def tool_results(seen: SeenMessages) -> list[ToolMessage]:
    return [m for m in seen.calls[-1] if isinstance(m, ToolMessage)]


def test_tool_result_reaches_the_structured_answer(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    result, seen, calls = run(write, tmp_path, "replies: []\n")
    assert result.status == "completed"
    assert calls == ["INV-7"]
    assert [m.content for m in tool_results(seen)] == ["INV-7: paid twice"]
    assert result.usage["llm_calls"] == 3  # call the tool, answer in text, then structured


def test_a_tool_the_agent_lacks_is_refused_and_said_so(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    script = "agents:\n  clerk:\n    - tool: {name: delete_invoice, args: {invoice_id: x}}\n"
    result, seen, calls = run(write, tmp_path, script)
    assert result.status == "completed"
    refused = tool_results(seen)[0]
    assert refused.status == "error"
    assert "refused: 'delete_invoice': not one of 'clerk''s tools" in str(refused.content)
    assert calls == []  # nothing ran: the refusal happened before any effect


def test_tool_errors_go_back_to_the_model(write: Callable[..., Path], tmp_path: Path) -> None:
    result, seen, _ = run(write, tmp_path, "replies: []\n", invoice="boom")
    assert result.status == "completed"
    assert "billing system down" in str(tool_results(seen)[0].content)


def test_tool_rounds_are_bounded(write: Callable[..., Path], tmp_path: Path) -> None:
    loop = "    - tool: {name: invoice_status, args: {invoice_id: again}}\n"
    result, seen, calls = run(write, tmp_path, "agents:\n  clerk:\n" + loop * 3, rounds=3)
    assert result.status == "completed"
    assert calls == ["again"] * 3
    assert "No more tool calls" in str(seen.calls[-1][-1].content)


def test_unknown_tool_arguments_are_refused_before_any_effect_and_audited(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    extra = "    - tool: {name: invoice_status, args: {invoice_id: x, agent: lead}}\n"
    write("tools.py", TOOLS)
    write("script.yaml", "agents:\n  clerk:\n" + extra)
    team = load_team(write("team.yaml", TEAM.format(rounds=5, guards="")))
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"invoice_id": "INV-1"})
        audit = app.audit.rows(result.run_id)
        denied = app.events.list(result.run_id, "permission_denied")
    module = next(iter(team.resolved.tools.values())).func.__globals__  # type: ignore[attr-defined]
    assert result.status == "completed"
    assert "x" not in module["CALLS"]  # the call with the extra argument never ran
    assert audit[0]["verdict"] == "denied"
    assert "unknown argument(s) 'agent'" in audit[0]["reason"]
    assert denied[0]["target"] == "invoice_status"


WORKER = """\
version: 1
name: plain
models:
  default: {use: scripted, script: script.yaml}
schemas:
  Question: {fields: {text: str}}
  Answer: {fields: {text: str}}
agents:
  - {id: worker, role: Worker}
flow:
  entry: worker
  input: Question
  output: Answer
  edges: [{from: worker, to: END, schema: Answer}]
"""


def test_a_worker_with_no_tools_calling_one_is_refused_and_audited(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("script.yaml", "agents:\n  worker:\n    - tool: {name: rm_rf, args: {path: /}}\n")
    team = load_team(write("team.yaml", WORKER))
    with team.compile(db=tmp_path / "w.db") as app:
        result = app.run({"text": "q"})
        audit = app.audit.rows(result.run_id)
    assert result.status == "completed"  # told, it answered properly the second time
    assert [(a["target"], a["verdict"]) for a in audit] == [("rm_rf", "denied")]
    assert "may only answer with `Answer`" in audit[0]["reason"]


ORG_WITH_REFUND = """\
version: 1
name: org
models:
  default: {use: scripted}
tools:
  refund: {import: "refunds:refund", requires: [can_refund]}
schemas:
  Ask: {fields: {question: str}}
  Note: {fields: {text: str}}
agents:
  - {id: lead, role: Lead, output: Note}
  - {id: clerk, role: Clerk, reports_to: lead, input: Ask, output: Note, tools: [refund],
     permissions: {can: [can_refund]}}
flow:
  entry: lead
  input: Ask
  output: Note
  edges: [{from: lead, to: END, schema: Note}]
"""


class StrayRefunds(ScriptedChatModel):
    """The scripted model, but the lead adds a ``refund`` call to each of its replies."""

    def _prepare(self, messages: Any, metadata: Any, kwargs: Any) -> Any:
        message, delay = super()._prepare(messages, metadata, kwargs)
        if (metadata or {}).get(AGENT_KEY) == "lead" and message.tool_calls:
            stray = ToolCall(name="refund", args={"amount": 500}, id="stray", type="tool_call")
            message.tool_calls.append(stray)
        return message, delay


def test_a_supervisors_stray_call_beside_its_answer_is_refused_and_audited(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write(
        "refunds.py",
        "from langchain_core.tools import tool\n\n\n@tool\n"
        "def refund(amount: int) -> str:\n    '''Refund.'''\n    raise SystemExit('ran')\n",
    )
    team = load_team(write("team.yaml", ORG_WITH_REFUND))
    with team.compile(db=tmp_path / "w.db", chat_models={"default": StrayRefunds()}) as app:
        result = app.run({"question": "why?"})
        audit = app.audit.rows(result.run_id)
        denied = app.events.list(result.run_id, "permission_denied")
        traced = app.trace(result.run_id).of("permission_denied")
    assert result.status == "completed", result.errors
    assert [(e.agent, e.detail["target"]) for e in traced] == [("lead", "refund")] * len(denied)
    assert [(row["agent"], row["verdict"]) for row in audit] == [("lead", "denied")] * len(audit)
    assert len(audit) == len(denied) >= 1


ASYNC_TOOLS = '''\
import asyncio

CALLS = []


async def invoice_status(invoice_id: str) -> str:
    """The payment status of an invoice."""
    await asyncio.sleep(0)
    CALLS.append(invoice_id)
    return f"{invoice_id}: paid twice"
'''


def test_an_async_tool_runs_in_sync_and_async_runs_and_inside_a_running_loop(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """An ``async def`` tool function (LangChain makes it a coroutine-only tool)."""
    import asyncio

    write("tools.py", ASYNC_TOOLS)
    write("script.yaml", "replies: []\n")
    team = load_team(write("team.yaml", TEAM.format(rounds=5, guards="")))
    with team.compile(db=tmp_path / "w.db") as app:
        seen = SeenMessages()
        done = app.run({"invoice_id": "INV-1"}, config={"callbacks": [seen]})
        assert done.status == "completed", done.errors
        assert [m.content for m in tool_results(seen)] == ["INV-1: paid twice"]

        async def in_a_loop() -> tuple[Any, Any]:
            sync = app.run({"invoice_id": "INV-2"})  # a notebook cell's running loop
            return sync, await app.arun({"invoice_id": "INV-3"})

        for result in asyncio.run(in_a_loop()):
            assert result.status == "completed", result.errors
    module = next(iter(team.resolved.tools.values())).coroutine.__globals__  # type: ignore[attr-defined]
    assert module["CALLS"] == ["INV-1", "INV-2", "INV-3"]
