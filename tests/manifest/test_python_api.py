"""The same team in Python and in YAML; JSON Schema; safe YAML loading."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from corral import (
    AgentSpec,
    EdgeSpec,
    FlowSpec,
    ManifestError,
    SchemaSpec,
    Team,
    WhenSpec,
    load_team,
    manifest_json_schema,
)
from corral.manifest import typed, validate

YAML = """\
version: 1
name: pair
schemas:
  Question:
    fields:
      text: {type: str, min_length: 1}
  Verdict:
    fields:
      kind: {enum: [easy, hard]}
      text: str
agents:
  - {id: asker, role: Asker}
  - {id: expert, role: Expert, reports_to: asker}
flow:
  entry: asker
  input: Question
  output: Verdict
  edges:
    - {from: asker, to: expert, schema: Verdict, when: {field: kind, equals: hard}}
    - {from: asker, to: END, schema: Verdict}
    - {from: expert, to: END, schema: Verdict}
"""


def python_team() -> Team:
    return Team(
        name="pair",
        schemas={
            "Question": SchemaSpec(fields={"text": {"type": "str", "min_length": 1}}),
            "Verdict": SchemaSpec(fields={"kind": {"enum": ["easy", "hard"]}, "text": "str"}),
        },
        agents=[
            AgentSpec(id="asker", role="Asker"),
            AgentSpec(id="expert", role="Expert", reports_to="asker"),
        ],
        flow=FlowSpec(
            entry="asker",
            input="Question",
            output="Verdict",
            edges=[
                EdgeSpec(
                    from_="asker",
                    to="expert",
                    schema_name="Verdict",
                    when=WhenSpec(field="kind", equals="hard"),
                ),
                EdgeSpec(from_="asker", to="END", schema_name="Verdict"),
                EdgeSpec(from_="expert", to="END", schema_name="Verdict"),
            ],
        ),
    )


def test_python_and_yaml_give_the_same_team(write: Callable[..., Path]) -> None:
    assert load_team(write("pair.yaml", YAML)) == python_team()


def test_python_team_accepts_pydantic_models_and_functions(tmp_path: Path) -> None:
    class Number(BaseModel):
        value: int

    def double(n: Number) -> Number:
        return Number(value=n.value * 2)

    team = Team(
        name="calc",
        schemas={"Number": SchemaSpec(model=Number)},
        agents=[AgentSpec(id="doubler", kind="function", function=double)],
        flow=FlowSpec(
            entry="doubler",
            input="Number",
            output="Number",
            edges=[EdgeSpec(from_="doubler", to="END", schema_name="Number")],
        ),
    )
    with team.compile(db=tmp_path / "w.db") as app:
        assert app.run({"value": 21}).output == {"value": 42}


def test_python_mistakes_raise_manifest_errors_too() -> None:
    with pytest.raises(ManifestError) as caught:
        Team(name="Bad Name", schemas={}, agents=[], flow={"entry": "x"})
    where = {p.where for p in caught.value.problems}
    assert {"name", "schemas", "agents", "flow.input"} <= where


def test_json_schema_describes_the_manifest(tmp_path: Path) -> None:
    schema = manifest_json_schema()
    assert schema["title"] == "Corral team"
    assert {"name", "schemas", "agents", "flow"} <= set(schema["required"])
    agent = schema["$defs"]["AgentSpec"]["properties"]
    assert {"id", "reports_to", "budget", "permissions", "tools"} <= set(agent)
    edge = schema["$defs"]["EdgeSpec"]["properties"]
    assert {"from", "to", "schema", "when"} <= set(edge)
    json.dumps(schema)  # serialisable for editors


def test_alias_bomb_is_refused(write: Callable[..., Path]) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    path = write("bomb.yaml", "\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match="expands to over 100,000 values"):
        load_team(path)


def test_oversized_file_is_refused(write: Callable[..., Path]) -> None:
    path = write("big.yaml", "description: '" + "x" * 1_100_000 + "'\n")
    with pytest.raises(ManifestError, match="over the 1,000,000 limit"):
        load_team(path)


def test_python_tags_are_never_constructed(write: Callable[..., Path]) -> None:
    path = write("evil.yaml", "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ManifestError, match=r"python/object/apply:os\.system' is not allowed"):
        load_team(path)


def test_merge_keys_and_non_text_keys_are_refused(write: Callable[..., Path]) -> None:
    path = write("merge.yaml", "base: &b {role: x}\nother:\n  <<: *b\n[1, 2]: y\n")
    with pytest.raises(ManifestError) as caught:
        load_team(path)
    messages = " ".join(p.message for p in caught.value.problems)
    assert "merge keys" in messages
    assert "is not text" in messages


def test_empty_and_missing_files(write: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="the file is empty"):
        load_team(write("empty.yaml", ""))
    with pytest.raises(ManifestError, match="cannot read the file"):
        load_team(tmp_path / "absent.yaml")


def test_committed_json_schema_is_current() -> None:
    committed = Path(__file__).resolve().parents[2] / "corral-team.schema.json"
    assert json.loads(committed.read_text()) == manifest_json_schema(), (
        "corral-team.schema.json is stale: run `make schema`"
    )


class AliasNote(BaseModel):
    """A schema with its own dump (by alias) and its own validation (a bare string)."""

    user_name: str = Field(alias="userName")

    def model_dump(self, **kw: Any) -> dict[str, Any]:
        kw.setdefault("by_alias", True)
        return super().model_dump(**kw)

    @classmethod
    def model_validate(cls, obj: Any, **kw: Any) -> AliasNote:
        return super().model_validate({"userName": obj} if isinstance(obj, str) else obj, **kw)


def test_a_schemas_own_dump_and_validation_are_kept() -> None:
    # Payloads skip pydantic's Python wrappers for speed, but not a schema's overrides.
    assert validate(AliasNote, AliasNote(userName="ann")) == ({"userName": "ann"}, [])
    assert validate(AliasNote, {"userName": "ann"}) == ({"userName": "ann"}, [])
    assert validate(AliasNote, "ann") == ({"userName": "ann"}, [])
    assert typed(AliasNote, "ann").user_name == "ann"
    payload, errors = validate(AliasNote, {"user": "ann"})
    assert payload is None
    assert errors == ["userName: Field required"]


def test_a_schema_given_two_sources_in_python_names_model_as_a_source() -> None:
    """Before: the error said 'exactly one of `fields` or `import`; got fields, model',
    never naming `model`, the source a Python user had just passed."""

    class Out(BaseModel):
        text: str

    with pytest.raises(
        ValueError, match=r"or, in Python, `model` \(the class\); got fields, model"
    ):
        SchemaSpec(model=Out, fields={"text": "str"})


def test_one_agent_given_instead_of_a_list_is_one_clear_problem() -> None:
    """Before: pydantic iterated the AgentSpec's fields and the ManifestError listed 26
    copies of "agents: Input should be a valid dictionary or instance of AgentSpec"."""
    team = python_team()
    with pytest.raises(ManifestError) as caught:
        Team(name="pair", schemas=team.schemas, agents=team.agents[0], flow=team.flow)
    agents = [p for p in caught.value.problems if p.loc[:1] == ("agents",)]
    assert [p.message for p in agents] == ["agents is one AgentSpec, not a list"]
    assert "agents=[...]" in agents[0].fix
