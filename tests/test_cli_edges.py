"""The CLI's rough edges, filed down: one way to find the workspace (and saying which),
text printed as written, ``--version``, help text on every option, a moved team file asked for."""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from corral.cli import app
from tests.conftest import Cli, run_cli

ECHO = """\
version: 1
name: echo
schemas:
  Note: {fields: {text: str}}
agents:
  - {id: echo, role: Echo, kind: function, function: "steps:echo"}
flow:
  entry: echo
  input: Note
  output: Note
  edges: [{from: echo, to: END, schema: Note}]
"""
STEPS = "def echo(payload):\n    return {'text': payload.text}\n"
NOTE = '{"text": "[bold red]not markup[/] and pip install corral[providers]"}'


def _team(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "steps.py").write_text(STEPS)
    path = tmp_path / "team.yaml"
    path.write_text(ECHO + extra)
    return path


def _cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Cli:
    saved = dict(os.environ)
    os.environ.pop("CORRAL_DB", None)
    os.environ.update(env or {})
    try:
        return run_cli(*args, cwd=tmp_path)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_every_command_finds_the_workspace_the_same_way_and_says_which(
    tmp_path: Path,
) -> None:
    _team(tmp_path, "checkpoint: {db: from_team.db}\n")
    run = _cli(tmp_path, "run", "team.yaml", "--input", NOTE, "--run-id", "a")
    assert run.code == 0, run.stderr
    assert "from_team.db (checkpoint.db of the team file)" in run.stderr
    assert (tmp_path / "from_team.db").is_file()
    assert not (tmp_path / ".corral").exists()

    env = {"CORRAL_DB": "from_env.db"}
    run = _cli(tmp_path, "run", "team.yaml", "--input", NOTE, "--run-id", "b", env=env)
    assert "workspace: from_env.db ($CORRAL_DB)" in run.stderr
    listed = _cli(tmp_path, "runs", "--json", env=env)
    assert [r["run_id"] for r in listed.json] == ["b"]

    run = _cli(tmp_path, "run", "team.yaml", "--input", NOTE, "--run-id", "c", "--db", "x.db")
    assert "workspace: x.db (--db)" in run.stderr  # --db wins over everything
    assert [r["run_id"] for r in _cli(tmp_path, "runs", "--db", "x.db", "--json").json] == ["c"]

    by_team = _cli(tmp_path, "runs", "--team", "team.yaml", "--json")
    assert [r["run_id"] for r in by_team.json] == ["a"]
    budget = _cli(tmp_path, "budget", "--team", "team.yaml", "--json")
    assert budget.code == 0
    assert "from_team.db (checkpoint.db of the team file)" in budget.stderr
    shown = _cli(tmp_path, "runs", "show", "a", "--team", "team.yaml", "--json")
    assert shown.code == 0, shown.stderr

    nowhere = _cli(tmp_path, "runs")  # the default, which nothing used: said, not created
    assert nowhere.code == 2
    assert "workspace: .corral/corral.db (the default)" in nowhere.stderr
    assert "there is no workspace at .corral/corral.db" in nowhere.stderr
    assert not (tmp_path / ".corral").exists()


def test_text_from_files_inputs_and_errors_is_printed_as_written(tmp_path: Path) -> None:
    _team(tmp_path)
    run = _cli(tmp_path, "run", "team.yaml", "--input", NOTE, "--db", "w.db")
    assert run.code == 0, run.stderr
    assert "[bold red]not markup[/] and pip install corral[providers]" in run.stdout
    bad = ECHO.replace("Note: {fields: {text: str}}", "Note: {fields: {text: 'dict[str, Nope]'}}")
    (tmp_path / "team.yaml").write_text(bad)
    invalid = _cli(tmp_path, "validate", "team.yaml")
    assert invalid.code == 2
    assert "list[T], dict[str, T] or a schema name" in invalid.stderr


def test_version_is_the_installed_one(tmp_path: Path) -> None:
    shown = _cli(tmp_path, "--version")
    assert shown.code == 0
    assert shown.stdout.strip() == f"corral {importlib.metadata.version('corral')}"


def _commands(group: Any, ctx: typer.Context) -> list[Any]:
    found: list[Any] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        found.append(command)
        if hasattr(command, "list_commands"):  # a group of commands
            found += _commands(command, ctx)
    return found


def test_every_option_of_every_command_has_help_and_no_type_placeholder(
    cli: Callable[..., Cli],
) -> None:
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    commands = [root, *_commands(root, ctx)]
    assert len(commands) >= 12
    for command in commands:
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"{command.name} {param.opts} has no help text"
        shown = command.get_help(typer.Context(command, info_name=command.name))
        options = [line for line in shown.splitlines() if line.lstrip().startswith("-")]
        for placeholder in ("<bool>", "<str>", "<int>", "<path>"):  # a flag takes no value;
            assert not [o for o in options if placeholder in o], (command.name, placeholder)
    helped = cli("run", "--help").stdout
    assert "--db PATH" in helped
    assert "--json " in helped


def test_bad_paths_ports_keys_and_edits_are_refused_by_name(tmp_path: Path) -> None:
    # Each is the user's to fix: exit 2 with the option named, never a traceback (and an
    # empty keys file never means "no key asked for").
    team = _team(tmp_path)
    (tmp_path / "empty.keys").write_text("")
    cases = [
        (["schema", "-o", "missing/dir/schema.json"], "cannot write missing/dir/schema.json"),
        (["graph", str(team), "-o", str(tmp_path)], f"cannot write {tmp_path}: Is a directory"),
        (["serve", str(team), "--api-keys", "nope.keys"], "cannot read --api-keys nope.keys"),
        (["serve", str(team), "--api-keys", "empty.keys"], "no API key given"),
        (["serve", str(team), "--port", "70000"], "--port 70000 is not a port"),
        (["serve", str(team), "--port", "0"], "--port 0 is not a port"),
        (["serve", str(team), "--host", "no such host!"], "--host 'no such host!' cannot be"),
        (["resume", "r1", "--edit", "{bad", "--db", "w.db"], "--edit is not valid JSON"),
    ]
    assert (
        _cli(tmp_path, "run", str(team), "--input", NOTE, "--db", "w.db", "--run-id", "r1").code
        == 0
    )
    for args, said in cases:
        done = _cli(tmp_path, *args)
        assert done.code == 2, (args, done.stdout, done.stderr)
        assert said in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_run_whose_team_file_moved_asks_for_team(tmp_path: Path) -> None:
    _team(tmp_path)
    run = _cli(tmp_path, "run", "team.yaml", "--input", NOTE, "--run-id", "a", "--db", "w.db")
    assert run.code == 0, run.stderr
    (tmp_path / "team.yaml").rename(tmp_path / "moved.yaml")
    for command in (("runs", "show", "a"), ("resume", "a")):
        gone = _cli(tmp_path, *command, "--db", "w.db")
        assert gone.code == 2
        assert "not there any more; pass --team FILE" in gone.stderr
    shown = _cli(tmp_path, "runs", "show", "a", "--db", "w.db", "--team", "moved.yaml")
    assert shown.code == 0, shown.stderr


def test_a_tilde_in_the_workspace_path_is_the_home_folder(tmp_path: Path) -> None:
    _team(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "CORRAL_DB": "~/env.db"}
    run = _cli(tmp_path, "run", "team.yaml", "--input", NOTE, env=env)
    assert run.code == 0, run.stderr
    run = _cli(tmp_path, "run", "team.yaml", "--input", NOTE, "--db=~/opt.db", env=env)
    assert run.code == 0, run.stderr
    assert (home / "env.db").is_file()
    assert (home / "opt.db").is_file()
    assert not (tmp_path / "~").exists()


def _agents(shown: Cli) -> list[str]:
    return [e["agent"] for e in json.loads(shown.stdout) if e["kind"] == "step"]


def test_runs_show_reads_a_changed_team_s_run_against_the_team_it_ran_under(
    tmp_path: Path,
) -> None:
    team = _team(tmp_path)
    run = _cli(tmp_path, "run", "team.yaml", "--input", NOTE, "--run-id", "a", "--db", "w.db")
    assert run.code == 0, run.stderr
    assert "team changed" not in _cli(tmp_path, "runs", "show", "a", "--db", "w.db").stderr
    renamed = ECHO.replace("id: echo", "id: repeat").replace(": echo\n", ": repeat\n")
    team.write_text(renamed.replace("from: echo", "from: repeat"))
    shown = _cli(tmp_path, "runs", "show", "a", "--db", "w.db", "--json")
    assert shown.code == 0, shown.stderr
    assert "its trace is read against the team it ran under" in shown.stderr
    assert _agents(shown) == ["echo"]  # the agent the team no longer has
    drawn = _cli(tmp_path, "runs", "show", "a", "--db", "w.db", "--format", "mermaid")
    assert drawn.code == 0, drawn.stderr
    assert "echo" in drawn.stdout  # the path drawn on the team it ran under
    assert "repeat" not in drawn.stdout
    # The function the stored definition names is gone: the team as it is now reads it.
    (tmp_path / "steps.py").write_text(STEPS.replace("def echo", "def other"))
    team.write_text(team.read_text().replace("steps:echo", "steps:other"))
    shown = _cli(tmp_path, "runs", "show", "a", "--db", "w.db", "--json")
    assert shown.code == 0, shown.stderr
    assert "the team it ran under no longer builds" in shown.stderr
    assert _agents(shown) == []


def test_validate_counts_one_agent_and_one_edge_in_the_singular(tmp_path: Path) -> None:
    _team(tmp_path)
    done = _cli(tmp_path, "validate", "team.yaml")
    assert done.code == 0, done.stderr
    assert "team echo with 1 agent and 1 edge" in done.stdout
