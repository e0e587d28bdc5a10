"""Chat model providers and script files: what ``run`` would refuse, ``validate`` refuses
first, each at its own file:line (a script's mistakes in the script file), exit 2, no
traceback. Through the CLI in subprocesses, as a user meets them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral import InputError, ManifestError, ScriptedChatModel, load_team
from tests.conftest import Cli

CliRunner = Callable[..., Cli]

TEAM = """\
version: 1
name: desk
models:
{models}
schemas:
  Note:
    fields:
      text: str
agents:
  - id: clerk
    role: Clerk
  - id: checker
    role: Checker
    model: {inline}
flow:
  entry: clerk
  input: Note
  output: Note
  edges:
    - {{from: clerk, to: checker, schema: Note}}
    - {{from: checker, to: END, schema: Note}}
"""
INPUT = '{"text": "hello"}'


def _line(text: str, marker: str) -> int:
    """The line of ``text`` that carries ``marker``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def _hide(write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` fail to import in the CLI subprocesses, as if not installed."""
    for module in modules:
        write(f"hidden/{module}/__init__.py", 'raise ImportError("hidden by the test")\n')
    before = os.environ.get("PYTHONPATH")
    hidden = str(write("hidden/.keep", "").parent)
    monkeypatch.setenv("PYTHONPATH", hidden + (os.pathsep + before if before else ""))


def _refused(cli: CliRunner, team: Path, *args: str) -> list[str]:
    """``validate`` and ``run`` on ``team``: both exit 2 with no traceback; their stderr."""
    found = []
    for command in (("validate", team), ("run", team, "--input", INPUT, "--db", "w.db", *args)):
        done = cli(*command)
        assert done.code == 2, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        found.append(done.stderr)
    return found


def test_unknown_providers_and_missing_packages_are_refused_at_their_line(
    cli: CliRunner, write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _hide(write, monkeypatch, "langchain_anthropic")
    text = TEAM.format(
        models='  default: {use: "nosuchprovider:model-x"}  #!unknown\n'
        '  typo: "opnai:gpt-4o"  #!typo\n'
        "  claude:\n"
        '    use: "anthropic:claude-sonnet-4-5"  #!package\n'
        "  slow: {use: scripted, params: {latency: fast}}  #!params",
        inline='"xai:grok-4"  #!inline',
    )
    aside = "  - {id: aside, role: Aside, reports_to: clerk, input: Note, output: Note, "
    aside += "model: slow}"
    text = text.replace("flow:\n", aside + "\nflow:\n")
    text = text.replace("    role: Clerk\n", "    role: Clerk\n    fallback: {model: typo}\n")
    text = text.replace("    role: Checker\n", "    role: Checker\n    fallback: {model: claude}\n")
    team = write("team.yaml", text)
    expected = {
        "unknown": "names provider 'nosuchprovider', which LangChain does not know",
        "typo": "did you mean 'openai'?",
        "package": "needs the package langchain-anthropic, which is not installed. "
        "Fix: pip install langchain-anthropic",
        "inline": "model 'xai:grok-4' needs the package langchain-xai",
        "params": "model 'slow' (scripted) has invalid params: latency: Input should be",
    }
    for stderr in _refused(cli, team):
        for marker, words in expected.items():
            located = f"team.yaml:{_line(text, '#!' + marker)} "
            assert any(located in t and words in t for t in stderr.splitlines()), (marker, stderr)
    assert not (tmp_path / "w.db").exists()  # refused before the workspace is made


def test_without_langchain_validate_and_run_ask_for_the_providers_extra(
    cli: CliRunner, write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _hide(write, monkeypatch, "langchain")
    text = TEAM.format(models='  default: {use: "openai:gpt-4o-mini"}  #!', inline="default")
    team = write("team.yaml", text)
    for stderr in _refused(cli, team):
        assert f"team.yaml:{_line(text, '#!')} (models.default.use)" in stderr, stderr
        assert "needs LangChain's model resolver" in stderr
        assert "pip install 'corral[providers]' and the provider's package" in stderr


def test_a_known_provider_passes_validate_and_run_locates_what_it_cannot_build(
    cli: CliRunner, write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("OPENAI")]:
        monkeypatch.delenv(name)  # no key: building the model fails before any call
    text = TEAM.format(models="  default:\n    use: openai:gpt-4o-mini  #!", inline="default")
    team = write("team.yaml", text)
    checked = cli("validate", team)
    assert checked.code == 0, checked.stderr
    done = cli("run", team, "--input", INPUT, "--db", "w.db")
    assert done.code == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert f"team.yaml:{_line(text, '#!')} (models.default.use)" in done.stderr
    assert "model 'default' (openai:gpt-4o-mini) cannot be created" in done.stderr


def test_compile_checks_the_models_it_must_build_and_skips_those_passed_in(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    text = TEAM.format(models='  default: {use: "nosuchprovider:model-x"}  #!', inline="default")
    team_file = write("team.yaml", text)
    team = load_team(team_file)
    with pytest.raises(ManifestError) as caught:
        team.compile(db=tmp_path / "w.db")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == (str(team_file), _line(text, "#!"))
    assert not (tmp_path / "w.db").exists()
    given = {"default": ScriptedChatModel()}
    with team.compile(db=tmp_path / "w.db", chat_models=given) as app:
        assert app.run({"text": "hi"}).ok


SCRIPTED = "  default: {use: scripted, script: script.yaml}  #!script"

# (case id, script text with the faulty line marked "#!", words the message must contain)
SCRIPT_CASES = [
    ("yaml-syntax", "agents:\n  clerk:\n    - raw: [oops  #!\n", "not valid YAML"),
    ("unknown-key", "agents:\n  clerk:\n    - raw: a\n    - outptu: {text: b}  #!\n", "'outptu'"),
    ("wrong-type", "agents:\n  clerk:\n    - raw: a\n      delay: soon  #!\n", "valid number"),
    (
        "two-kinds",
        "agents:\n  clerk:\n    - raw: a\n    - raw: b  #!\n      auto: true\n",
        "one of",
    ),
    ("bad-then", "replies: []\nthen: sometimes  #!\n", "'auto', 'error' or 'repeat'"),
    ("not-a-list", "agents:\n  clerk: {raw: a}  #!\n", "valid tuple"),
    ("unknown-agent", "agents:\n  clerk: []\n  clrek:  #!\n    - raw: a\n", "did you mean"),
    ("tool-args", "agents:\n  clerk:\n    - tool: {name: t, args: [1]}  #!\n", "dictionary"),
]


@pytest.mark.parametrize(
    ("script", "words"), [c[1:] for c in SCRIPT_CASES], ids=[c[0] for c in SCRIPT_CASES]
)
def test_script_mistakes_are_at_the_script_files_line(
    write: Callable[..., Path], script: str, words: str
) -> None:
    path = write("script.yaml", script)
    with pytest.raises(ManifestError) as caught:
        load_team(write("team.yaml", TEAM.format(models=SCRIPTED, inline="default")))
    problem = next(p for p in caught.value.problems if words in str(p))
    assert (problem.file, problem.line) == (str(path.resolve()), _line(script, "#!")), str(
        caught.value
    )


def test_script_mistakes_through_the_cli(cli: CliRunner, write: Callable[..., Path]) -> None:
    script = (
        "agents:\n  clerk:\n    - raw: a\n      delay: soon  #!type\n"
        "    - outptu: {text: b}  #!key\n"
    )
    path = write("script.yaml", script)
    team = write("team.yaml", TEAM.format(models=SCRIPTED, inline="default"))
    for stderr in _refused(cli, team):
        for marker in ("#!type", "#!key"):
            assert f"{path.resolve()}:{_line(script, marker)} " in stderr, stderr
        assert "team.yaml:" not in stderr


def test_a_missing_script_file_is_at_the_team_files_script_line(
    cli: CliRunner, write: Callable[..., Path]
) -> None:
    text = TEAM.format(models=SCRIPTED, inline="default")
    team = write("team.yaml", text)
    for stderr in _refused(cli, team):
        assert f"team.yaml:{_line(text, '#!script')} (models.default.script)" in stderr, stderr
        assert "script file 'script.yaml' does not exist" in stderr


def test_a_model_named_by_another_is_that_model_and_a_bad_name_is_at_its_line(
    write: Callable[..., Path], cli: CliRunner
) -> None:
    aliased = TEAM.format(
        models="  slow: {use: scripted, params: {latency_ms: 1}}\n  default: slow", inline="slow"
    )
    team = load_team(write("team.yaml", aliased))
    assert team.models["default"] == team.models["slow"]
    done = cli("run", write("team.yaml", aliased), "--input", INPUT, "--db", "w.db")
    assert done.code == 0, done.stderr
    for models, said in (
        ("  slow: scripted\n  default: slw", "did you mean 'slow'?"),
        ("  a: b\n  b: a\n  default: a", "name each other"),
    ):
        text = TEAM.format(models=models, inline="scripted")
        path = write("bad.yaml", text)
        with pytest.raises(ManifestError) as raised:
            load_team(path)
        assert said in str(raised.value)
        assert f"bad.yaml:{_line(text, 'models:')}" in str(raised.value)
        stderr = _refused(cli, path)
        assert all(said in err and "Traceback" not in err for err in stderr)


def test_a_chat_model_under_a_name_no_agent_uses_is_refused_before_the_workspace(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: chat_models={"defualt": mine} was ignored without a word, and the team ran
    on the model its file declares (a real provider, or the scripted one)."""
    text = TEAM.format(models="  default: {use: scripted}", inline="default")
    team = load_team(write("team.yaml", text))
    with pytest.raises(InputError, match="chat_models names 'defualt', a model no agent uses"):
        team.compile(db=tmp_path / "w.db", chat_models={"defualt": ScriptedChatModel()})
    assert not (tmp_path / "w.db").exists()


def test_a_chat_model_that_is_not_one_is_refused_before_the_workspace(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """Before: chat_models={"default": 5} raised AttributeError "'int' object has no
    attribute 'with_structured_output'" from deep inside the graph's build."""
    text = TEAM.format(models="  default: {use: scripted}", inline="default")
    team = load_team(write("team.yaml", text))
    given: Any = {"default": 5}
    with pytest.raises(InputError, match=r"chat_models\['default'\] must be a LangChain chat"):
        team.compile(db=tmp_path / "w.db", chat_models=given)
    assert not (tmp_path / "w.db").exists()
