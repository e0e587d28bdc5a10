"""Functions and tools a team imports: what goes wrong at import is a located problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from corral import ManifestError, load_team

TEAM = """\
version: 1
name: pair
schemas:
  Num:
    fields:
      value: int
tools:
  lookup: {{import: "{tool}"}}
agents:
  - id: first
    role: First
    tools: [lookup]
flow:
  entry: first
  input: Num
  output: Num
  edges:
    - {{from: first, to: END, schema: Num}}
"""


def _problem(write: Callable[..., Path], tool: str) -> tuple[int | None, str, str]:
    with pytest.raises(ManifestError) as caught:
        load_team(write("team.yaml", TEAM.format(tool=tool)))
    [problem] = caught.value.problems
    return problem.line, ".".join(map(str, problem.loc)), f"{problem.message}. {problem.fix}"


def test_a_tool_function_without_a_docstring_is_refused_at_its_import_line(
    write: Callable[..., Path],
) -> None:
    write("bare_tools.py", "def lookup(x: str) -> str:\n    return x\n")
    line, field, said = _problem(write, "bare_tools:lookup")
    assert (line, field) == (8, "tools.lookup.import")
    assert "docstring" in said
    assert "`description:`" in said


def test_a_module_that_exits_at_import_is_a_problem_not_an_exit(
    write: Callable[..., Path],
) -> None:
    write("exits_mod.py", "raise SystemExit(3)\n")
    line, field, said = _problem(write, "exits_mod:x")
    assert (line, field) == (8, "tools.lookup.import")
    assert "cannot import 'exits_mod:x' (SystemExit: 3)" in said
    assert "__main__" in said


FUNCTION_TEAM = """\
version: 1
name: pair
schemas:
  Num: {fields: {value: int}}
agents:
  - id: first
    kind: function
    function: steps:two
flow:
  entry: first
  input: Num
  output: Num
  edges:
    - {from: first, to: END, schema: Num}
"""


def test_a_function_that_cannot_take_one_payload_is_refused_at_its_line(
    write: Callable[..., Path],
) -> None:
    write("steps.py", "def two(a, b):\n    return a\n")
    with pytest.raises(ManifestError) as caught:
        load_team(write("team.yaml", FUNCTION_TEAM))
    [problem] = caught.value.problems
    assert (problem.line, problem.loc) == (8, ("agents", 0, "function"))
    assert "'two'(a, b) cannot be called with one payload" in problem.message
    assert "def name(payload)" in problem.fix


def test_functions_that_take_one_payload_pass(write: Callable[..., Path]) -> None:
    write(
        "steps.py",
        "def two(payload, extra=None, *rest, flag=False, **more):\n    return payload\n",
    )
    assert load_team(write("team.yaml", FUNCTION_TEAM)).resolved.functions["first"]


def _package(write: Callable[..., Path], folder: str, said: str) -> Path:
    """A team folder whose function is in a package that imports its sibling relatively."""
    write(f"{folder}/mypkg/__init__.py", "")
    write(f"{folder}/mypkg/helpers.py", f"SAID = {said!r}\n")
    write(
        f"{folder}/mypkg/mod.py", "from .helpers import SAID\n\ndef fn(payload):\n    return SAID\n"
    )
    return write(f"{folder}/team.yaml", FUNCTION_TEAM.replace("steps:two", "mypkg.mod:fn"))


def test_a_package_beside_the_team_file_imports_its_own_modules_relatively(
    write: Callable[..., Path],
) -> None:
    first = load_team(_package(write, "one", "from one")).resolved.functions["first"]
    second = load_team(_package(write, "two", "from two")).resolved.functions["first"]
    assert (first(None), second(None)) == ("from one", "from two")  # same names, two folders
