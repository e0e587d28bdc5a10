"""Start-up stays light and large teams stay fast to check (issue 13's start-up part).

Which modules a fresh process loads is exact and does not depend on the machine's
load, so these tests hold the gains without timing anything; ``benchmarks/startup.py``
measures the times.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.utils.function_calling import convert_to_json_schema
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from corral import ManifestError, load_team
from tests.conftest import MINI

HEAVY = (
    "networkx",
    "sqlite_utils",
    "langgraph",
    "langchain_core",
    "pydantic",
    "yaml",
    "genai_prices",
    "prometheus_client",
    "opentelemetry",
)


def loaded_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running ``code``."""
    shown = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{shown}"], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_corral_loads_none_of_the_runtime() -> None:
    assert loaded_after("import corral") & set(HEAVY) == set()
    shown = "import sys; print(sorted(m for m in sys.modules if m.startswith('corral')))"
    done = subprocess.run(
        [sys.executable, "-c", f"import corral\n{shown}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "['corral', 'corral._lazy', 'corral.errors']"


def test_the_command_line_loads_none_of_the_runtime_until_a_command_needs_it() -> None:
    # What `corral --help` imports: the app with every command registered.
    assert loaded_after("import corral.cli") & set(HEAVY) == set()
    assert loaded_after("import corral.cli") >= {"typer", "corral"}


def test_the_runtime_still_arrives_when_a_name_is_used() -> None:
    assert {"langgraph", "pydantic"} <= loaded_after("import corral; corral.App")


RUNTIME = ("langgraph", "langchain_core", "sqlite_utils", "prometheus_client", "opentelemetry")


def test_checking_or_drawing_a_team_file_loads_none_of_the_runtime(
    write: Callable[..., Path],
) -> None:
    # `corral validate`, `corral graph` and `load_team` build the team's plan, schemas and
    # checks: pydantic, YAML and networkx, not LangGraph, LangChain's models or the workspace.
    path = write("team.yaml", MINI.format(model="scripted"))
    cli = "from typer.testing import CliRunner\nfrom corral.cli import app\n"
    checks = [
        f"from corral import load_team\nload_team({str(path)!r}).check_models()",
        f"from corral import load_team\nteam = load_team({str(path)!r})\n"
        "assert 'Answer' in team.draw('mermaid') and 'Answer' in team.draw('dot')",
        f"{cli}done = CliRunner().invoke(app, ['validate', {str(path)!r}])\n"
        "assert done.exit_code == 0 and done.output.startswith('ok '), done.output",
        f"{cli}done = CliRunner().invoke(app, ['graph', {str(path)!r}])\n"
        "assert done.exit_code == 0 and 'flowchart' in done.output, done.output",
    ]
    for check in checks:
        loaded = loaded_after(check)
        assert loaded & {*RUNTIME, "genai_prices"} == set()
        assert {"pydantic", "yaml", "networkx"} <= loaded


def test_what_a_team_needs_is_loaded_when_its_file_asks_for_it(
    write: Callable[..., Path],
) -> None:
    # A tool is a LangChain tool, a scripted model's params are checked on the model
    # itself, and a cost budget needs the price data: each loads what it checks with.
    write("helpers.py", 'def lookup(text: str) -> str:\n    """Look it up."""\n    return text\n')
    tools = MINI.format(model="scripted").replace(
        "agents:", "tools:\n  lookup: {import: 'helpers:lookup'}\nagents:"
    )
    tools = tools.replace("    model: scripted", "    model: scripted\n    tools: [lookup]")
    params = MINI.format(model="fast").replace(
        "schemas:", "models:\n  fast: {use: scripted, params: {latency: 0.5}}\nschemas:"
    )
    costs = MINI.format(model="openai:gpt-4o-mini").replace(
        "schemas:", "budget: {daily_cost_usd: 5}\nschemas:"
    )
    load = "from corral import load_team\nteam = load_team({!r})"
    for name, text, check, needs in [
        ("tools.yaml", tools, "team.check_models()", "langchain_core"),
        ("params.yaml", params, "team.check_models()", "langchain_core"),
        ("costs.yaml", costs, "assert team.plan.team_budget.team_daily_cost", "genai_prices"),
    ]:
        path = write(name, text)
        assert needs in loaded_after(load.format(str(path)) + "\n" + check), name
    bad = write("bad.yaml", params.replace("latency: 0.5", "latency: soon"))
    with pytest.raises(ManifestError, match="has invalid params: latency"):
        load_team(bad).check_models()


@pytest.mark.parametrize(
    "package", ["corral", "corral.graphs", "corral.models", "corral.workspace"]
)
def test_every_lazily_exported_name_resolves_and_is_listed(package: str) -> None:
    # A name added to __all__ (and the TYPE_CHECKING imports) but not to the lazy map, or
    # the other way round, fails here.
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    lazy = set(dir(module)) - set(vars(module))
    assert lazy <= set(module.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = module.Nope


class Composed:
    """Records which loader composed each document, around PyYAML's own ``compose``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loaders: list[type[Any]] = []
        real = yaml.compose

        def compose(stream: str, Loader: type[Any]) -> Any:
            self.loaders.append(Loader)
            return real(stream, Loader=Loader)

        monkeypatch.setattr(yaml, "compose", compose)


def test_libyaml_composes_and_problems_keep_their_file_and_line(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert hasattr(yaml, "CSafeLoader"), "PyYAML is built without libyaml here"
    composed = Composed(monkeypatch)
    text = MINI.format(model="scripted").replace("role: Solver", "role: Solver\n    colour: red")
    text = text.replace("score: {type: int, ge: 0, le: 10}", "score: {type: int, ge: x}")
    path = write("team.yaml", text)
    with pytest.raises(ManifestError) as caught:
        load_team(path)
    assert composed.loaders == [yaml.CSafeLoader]
    lines = text.splitlines()
    found = {p.message: (p.file, p.line) for p in caught.value.problems}
    assert found == {
        "unknown key 'colour'": (str(path), lines.index("    colour: red") + 1),
        "Input should be a valid number, unable to parse string as a number (got 'x')": (
            str(path),
            lines.index("      score: {type: int, ge: x}") + 1,
        ),
    }


def test_a_document_libyaml_refuses_is_reported_by_the_python_loader(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    composed = Composed(monkeypatch)
    path = write("team.yaml", "version: 1\nname: x\nagents:\n  - id: a\n - id: b\n")
    with pytest.raises(ManifestError) as caught:
        load_team(path)
    assert composed.loaders[0] is yaml.CSafeLoader
    assert [issubclass(loader, yaml.SafeLoader) for loader in composed.loaders] == [False, True]
    (problem,) = caught.value.problems
    assert problem.file == str(path)
    # The Python loader's own words and marks: where the broken mapping starts, and
    # where it noticed (libyaml would say "did not find expected key").
    assert problem.line == 1
    assert problem.message == (
        "not valid YAML: expected <block end>, but found '<block sequence start>' "
        "(noticed at line 5)"
    )


def test_aliases_are_still_counted_by_the_python_composer(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A document with anchors is composed in Python, which keeps each alias's place.
    composed = Composed(monkeypatch)
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{k}: &{k} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
        for p, k in zip("abcde", "bcdef", strict=True)
    ]
    path = write("laughs.yaml", "\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match="expands to over 100,000 values"):
        load_team(path)
    assert [issubclass(loader, yaml.SafeLoader) for loader in composed.loaders] == [True]


def chain_team(agents: int) -> str:
    """A valid team: a chain of agents passing one schema, reporting in a tree."""
    lines = ["version: 1", "name: chain", "models: {default: scripted}", "schemas:"]
    lines += ["  Note:", "    fields:", "      text: {type: str, min_length: 1}", "agents:"]
    for i in range(agents):
        lines += [f"  - id: a{i}", f"    role: Worker {i}"]
        if i:
            lines.append(f"    reports_to: a{(i - 1) // 10}")
    lines += ["flow:", "  entry: a0", "  input: Note", "  output: Note", "  edges:"]
    for i in range(agents):
        to = f"a{i + 1}" if i + 1 < agents else "END"
        lines.append(f"    - {{from: a{i}, to: {to}, schema: Note}}")
    return "\n".join(lines) + "\n"


class CountedSchemas:
    """The models pydantic generates a JSON Schema for, while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[str] = []
        real = GenerateJsonSchema.generate

        def generate(generator: GenerateJsonSchema, schema: Any, *args: Any, **kw: Any) -> Any:
            model = schema.get("cls") or schema.get("schema", {}).get("cls")
            self.made.append(getattr(model, "__name__", "?"))
            return real(generator, schema, *args, **kw)

        monkeypatch.setattr(GenerateJsonSchema, "generate", generate)


def test_a_schema_is_generated_once_however_many_agents_share_it(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    team = load_team(write("team.yaml", chain_team(60)))
    counted = CountedSchemas(monkeypatch)
    with team.compile(db=tmp_path / "w.db") as app:
        assert len(app.plan.agents) == 60
    # 60 agents answer with Note: made once. The flow feeds every report, so no
    # supervisor is offered a `delegate` tool (tests/nodes/test_prompt_tokens.py).
    assert sorted(counted.made) == ["Note"]


def test_the_cached_schema_is_the_one_pydantic_makes_and_the_callers_to_change(
    write: Callable[..., Path],
) -> None:
    note = load_team(write("team.yaml", chain_team(2))).plan.schemas["Note"]
    made = note.model_json_schema()
    assert made == BaseModel.model_json_schema.__func__(note)  # type: ignore[attr-defined]
    made["properties"]["text"]["title"] = "changed"
    assert note.model_json_schema()["properties"]["text"]["title"] == "Text"
    assert note.model_json_schema(mode="serialization") == BaseModel.model_json_schema.__func__(  # type: ignore[attr-defined]
        note, mode="serialization"
    )


class TracedSchemas(BaseCallbackHandler):
    """The output schema langchain puts in each model call's tracing metadata."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        traced = (kwargs.get("options") or {}).get("ls_structured_output_format")
        self.seen.append(traced)


def test_model_calls_trace_the_same_schema_without_rebuilding_it(
    write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    team = load_team(write("team.yaml", MINI.format(model="scripted")))
    answer = team.plan.schemas["Answer"]
    with team.compile(db=tmp_path / "w.db") as app:
        traced = TracedSchemas()
        app.run({"text": "warm up"}, config={"callbacks": [traced]})
        counted = CountedSchemas(monkeypatch)
        for i in range(3):
            assert app.run({"text": f"q{i}"}, config={"callbacks": [traced]}).ok
    assert counted.made == []  # nothing regenerated per call
    assert len(traced.seen) == 4
    expected = {"kwargs": {"method": "function_calling"}, "schema": convert_to_json_schema(answer)}
    assert traced.seen == [expected] * 4
