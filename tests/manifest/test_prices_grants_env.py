"""Load-time refusals that keep money and permissions honest, through ``corral validate``
in a subprocess as a user meets them: a cost budget on a model with no known price, a
``${NAME}`` whose variable is unset, and capability names required or granted in vain.
Each is exit 2 at its own file:line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli

CliRunner = Callable[..., Cli]

TEAM = """\
version: 1
name: desk
models:
{models}
schemas:
  Note: {{fields: {{text: str}}}}
tools:
{tools}
agents:
  - id: clerk
    role: Clerk
{agent}
flow:
  entry: clerk
  input: Note
  output: Note
  edges: [{{from: clerk, to: END, schema: Note}}]
{budget}
"""


def _team(models: str, agent: str = "", budget: str = "", tools: str = "  {}") -> str:
    if tools == "  {}":
        tools = "  noop: {import: 'tools:noop'}"
    return TEAM.format(models=models, agent=agent, budget=budget, tools=tools)


def _line(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


@pytest.fixture
def tools(write: Callable[..., Path]) -> None:
    write(
        "tools.py",
        "from langchain_core.tools import tool\n\n\n@tool\n"
        "def noop() -> str:\n    '''Nothing.'''\n    return ''\n",
    )


def test_a_cost_budget_on_an_unpriced_model_is_refused_at_the_budgets_line(
    cli: CliRunner, write: Callable[..., Path], tools: None
) -> None:
    text = _team(
        "  default: {use: 'openai:my-local-llama', params: {api_key: sk-test}}",
        agent="    budget:\n      daily_cost_usd: 0.000001  #!agent",
        budget="budget:\n  daily_cost_usd: 5  #!team\nguards:\n  max_run_cost_usd: 1  #!run",
    )
    done = cli("validate", write("team.yaml", text))
    assert done.code == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    for marker, field in (
        ("#!agent", "agents.0.budget.daily_cost_usd"),
        ("#!team", "budget.daily_cost_usd"),
        ("#!run", "guards.max_run_cost_usd"),
    ):
        assert f"team.yaml:{_line(text, marker)} ({field})" in done.stderr
    assert "model 'openai:my-local-llama' (of agent 'clerk') has no known price" in done.stderr
    assert "declare a price or drop the cost budget" in done.stderr
    assert "models.default.price" in done.stderr


@pytest.mark.parametrize(
    "price",
    [
        "{input_per_mtok: 0.5, output_per_mtok: 1.5}",
        "unknown_ok",
    ],
)
def test_a_declared_price_or_unknown_ok_lets_the_cost_budget_load(
    cli: CliRunner, write: Callable[..., Path], tools: None, price: str
) -> None:
    text = _team(
        "  default: {use: 'openai:my-local-llama', params: {api_key: sk-test}, "
        f"price: {price}}}",
        agent="    budget: {daily_cost_usd: 0.000001}",
    )
    done = cli("validate", write("team.yaml", text))
    assert done.code == 0, done.stdout + done.stderr


def test_a_cost_budget_on_a_model_genai_prices_knows_needs_no_declared_price(
    cli: CliRunner, write: Callable[..., Path], tools: None
) -> None:
    text = _team(
        "  default: {use: 'openai:gpt-4o-mini', params: {api_key: sk-test}}",
        budget="budget: {agent_defaults: {daily_cost_usd: 1}}",
    )
    done = cli("validate", write("team.yaml", text))
    assert done.code == 0, done.stdout + done.stderr


def test_a_missing_environment_variable_is_refused_at_its_line(
    cli: CliRunner,
    write: Callable[..., Path],
    tools: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CORRAL_TEST_UNSET_KEY", raising=False)
    text = _team(
        "  default:\n    use: openai:gpt-4o-mini\n    params:\n"
        "      api_key: ${CORRAL_TEST_UNSET_KEY}  #!key",
    )
    done = cli("validate", write("team.yaml", text))
    assert done.code == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"team.yaml:{_line(text, '#!key')} (models.default.params.api_key)" in done.stderr
    assert "'CORRAL_TEST_UNSET_KEY', which is not set" in done.stderr
    monkeypatch.setenv("CORRAL_TEST_UNSET_KEY", "sk-now-set")
    assert cli("validate", write("team.yaml", text)).code == 0


def test_open_capability_names_must_be_both_required_and_granted(
    cli: CliRunner, write: Callable[..., Path], tools: None
) -> None:
    text = _team(
        "  default: scripted",
        agent="    tools: [refund]\n    permissions:\n      can: [can_refnd]  #!granted",
        tools="  refund:\n    import: 'tools:noop'\n    requires: [can_refund]  #!required",
    )
    done = cli("validate", write("team.yaml", text))
    assert done.code == 2, done.stdout + done.stderr
    assert f"team.yaml:{_line(text, '#!required')} (tools.refund.requires.0)" in done.stderr
    assert "requires 'can_refund', which no agent is granted" in done.stderr
    assert f"team.yaml:{_line(text, '#!granted')} (agents.0.permissions.can.0)" in done.stderr
    assert "is granted 'can_refnd', which no tool requires" in done.stderr
    assert "did you mean 'can_refund'?" in done.stderr
    fixed = text.replace("can: [can_refnd]", "can: [can_refund]")
    assert cli("validate", write("team.yaml", fixed)).code == 0
