"""Odd YAML in team files: keys that are not text, self-referencing aliases, partial
files, unknown keys in optional sections. Each is one located problem, never a crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from corral import ManifestError, load_team

BASE = """\
version: 1
name: pair
models:
  default: scripted
schemas:
  Num:
    fields:
      value: int
agents:
  - id: first
    role: First
  - id: second
    role: Second
flow:
  entry: first
  input: Num
  output: Num
  edges:
    - {from: first, to: second, schema: Num}
    - {from: second, to: END, schema: Num}
"""


def _problems(write: Callable[..., Path], text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ManifestError) as caught:
        load_team(write("team.yaml", text))
    return [
        (p.line, ".".join(map(str, p.loc)), f"{p.message} {p.fix}") for p in caught.value.problems
    ]


@pytest.mark.parametrize(("key", "kind"), [("on", "boolean"), ("yes", "boolean"), ("1", "number")])
def test_a_top_level_key_that_is_not_text_is_refused_at_its_line(
    write: Callable[..., Path], key: str, kind: str
) -> None:
    text = BASE.replace("name: pair\n", f"name: pair\n{key}: 3\n")
    [(line, field, said)] = _problems(write, text)
    assert (line, field) == (3, key)
    assert f"key '{key}' is read as a {kind}" in said
    assert f"quote it: '{key}':" in said


def test_a_nested_boolean_key_is_named_as_written(write: Callable[..., Path]) -> None:
    text = BASE.replace("      value: int\n", "      value: int\n      yes: int\n")
    [(line, field, said)] = _problems(write, text)
    assert (line, field) == (9, "schemas.Num.fields.yes")
    assert "read as a boolean" in said


@pytest.mark.parametrize(
    ("cycle", "alias_line"),
    [
        ("  Loop: &x [*x]\n", 6),
        ("  Loop: &x {inner: *x}\n", 6),
        ("  Loop: &x\n    - [1, *x]\n", 7),
    ],
)
def test_an_alias_inside_its_own_anchor_is_one_problem(
    write: Callable[..., Path], cycle: str, alias_line: int
) -> None:
    text = BASE.replace("schemas:\n", "schemas:\n" + cycle)
    [(line, field, said)] = _problems(write, text)
    assert line == alias_line
    assert field.startswith("schemas.Loop")
    assert "refers to the value that contains it" in said


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nname: x\n",
        "version: 1\nname: x\nflow: {edges: [{to: END}]}\n",
        "version: 1\nname: x\nagents:\n  - {role: First, reports_to: 3}\nflow: {}\n",
    ],
)
def test_a_partial_file_shows_no_placeholder(write: Callable[..., Path], text: str) -> None:
    found = _problems(write, text)
    assert found
    assert not [said for _, _, said in found if "missing'" in said or "\\x00" in said], found


@pytest.mark.parametrize(
    ("old", "new", "hint"),
    [
        (
            "    role: First\n",
            "    role: First\n    budget: {max_output_token: 5}\n",
            "'max_output_tokens'",
        ),
        ("    role: First\n", "    role: First\n    retry: {max_attempt: 2}\n", "'max_attempts'"),
        ("  default: scripted\n", "  default: {use: scripted, scirpt: s.yaml}\n", "'script'"),
        (
            "    role: First\n",
            "    role: First\n    budget: {zzz: 5}\n",
            "allowed: max_input_tokens",
        ),
    ],
)
def test_an_unknown_key_in_an_optional_section_gets_a_hint(
    write: Callable[..., Path], old: str, new: str, hint: str
) -> None:
    [(_, _, said)] = _problems(write, BASE.replace(old, new, 1))
    assert "unknown key" in said
    assert hint in said


@pytest.mark.parametrize(
    ("constraints", "said"),
    [
        ("{type: float, ge: .nan}", "ge: nan is not a number"),
        ("{type: int, ge: 5, le: 1}", "ge: 5.0 and le: 1.0 leave no number between"),
        ("{type: float, gt: 1, lt: 1}", "gt: 1.0 and lt: 1.0 leave no number between"),
        ("{type: str, min_length: 5, max_length: 1}", "min_length 5 is greater than max_length 1"),
    ],
)
def test_field_constraints_no_value_can_meet_are_refused_at_the_field(
    write: Callable[..., Path], constraints: str, said: str
) -> None:
    text = BASE.replace("      value: int\n", f"      value: int\n      x: {constraints}\n")
    [(line, field, message)] = _problems(write, text)
    assert (line, field) == (9, "schemas.Num.fields.x")
    assert said in message
    assert "no value can meet the constraints" in message


def test_field_constraints_some_value_meets_pass(write: Callable[..., Path]) -> None:
    text = BASE.replace(
        "      value: int\n",
        "      value: {type: int, ge: 1, le: 1}\n"
        "      x: {type: str, min_length: 2, max_length: 2}\n",
    )
    assert load_team(write("team.yaml", text)).name == "pair"


def test_a_boolean_version_is_refused_at_its_line(write: Callable[..., Path]) -> None:
    text = BASE.replace("version: 1\n", "# the format\nversion: true\n")  # True == 1 in Python
    [(line, field, said)] = _problems(write, text)
    assert (line, field) == (2, "version")
    assert "version must be the whole number 1, not a boolean (got True)" in said


def test_a_byte_that_is_not_utf8_is_refused_at_its_line_and_column(
    write: Callable[..., Path],
) -> None:
    path = write("team.yaml", BASE)
    latin1 = BASE.replace("    role: Second\n", "    role: Sécond\n").encode("latin-1")
    path.write_bytes("# é\n".encode() + latin1)  # valid UTF-8 before the bad byte
    with pytest.raises(ManifestError) as caught:
        load_team(path)
    [problem] = caught.value.problems
    assert problem.line == 14
    assert "byte 0xe9 at column 12 is not UTF-8" in problem.message
    assert "save the file as UTF-8" in problem.fix


def test_a_mistake_reached_through_an_alias_is_refused_where_the_alias_is(
    write: Callable[..., Path],
) -> None:
    text = BASE.replace("      value: int\n", "      value: &field {type: int, ge: 0}\n").replace(
        "    role: Second\n", "    role: Second\n    retry: *field\n"
    )
    found = _problems(write, text)
    assert [(line, field) for line, field, _ in found] == [
        (14, "agents.1.retry.type"),
        (14, "agents.1.retry.ge"),
    ]
    assert all("unknown key" in said for _, _, said in found)
