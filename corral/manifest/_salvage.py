"""Cross-reference checks for a team whose structure did not validate.

So that one pass reports every mistake, a best-effort ``Team`` is built from the
raw data: each piece that validates is used as is, a broken agent or edge keeps the
id and reference fields it still has. The whole-team checks then run on it, and
any problem about an item that already has a structural problem is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from corral.errors import Problem
from corral.manifest._checks import check_team
from corral.manifest._policies import GuardSpec
from corral.manifest._spec import (
    AgentSpec,
    CheckpointSpec,
    EdgeSpec,
    FlowSpec,
    SchemaSpec,
    ToolSpec,
    WhenSpec,
)

if TYPE_CHECKING:
    from corral.manifest._fields import TeamFields as Team

_MISSING = "\x00missing"  # a placeholder no real id or name can equal


def salvage_problems(team_class: type[Team], data: Any, structural: list[Problem]) -> list[Problem]:
    """Cross-reference problems of ``data`` not already covered by ``structural``."""
    data = _plain(data)
    if not isinstance(data, dict):
        return []
    try:
        team = _salvage(team_class, data)
        found = check_team(team)
    except Exception:  # salvage is best effort: the structural problems stand alone
        return []
    taken = {_item(p.loc) for p in structural}
    return [p for p in found if _item(p.loc) not in taken and not _placeholder(p)]


def _placeholder(problem: Problem) -> bool:
    """Whether a problem is about the placeholder (messages show it raw or as repr)."""
    said = f"{problem.message} {problem.fix}"
    return _MISSING in said or repr(_MISSING)[1:-1] in said


def _plain(value: Any) -> Any:
    """Python-built specs as the dicts a YAML file would give."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(by_alias=True))  # its tuples as lists too
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _item(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The agent, edge or section a location belongs to."""
    if loc[:2] == ("flow", "edges"):
        return loc[:3]
    return loc[:2]


def _salvage(team_class: type[Team], data: dict[str, Any]) -> Team:
    # Only the names of schemas, models and tools matter to the checks.
    agents = tuple(_agent(raw) for raw in _items(data.get("agents")))
    flow_raw = data.get("flow") if isinstance(data.get("flow"), dict) else {}
    assert isinstance(flow_raw, dict)
    flow = FlowSpec.model_construct(
        entry=_text(flow_raw.get("entry")),
        input=_text(flow_raw.get("input")),
        output=_text(flow_raw.get("output")),
        edges=tuple(_edge(raw) for raw in _items(flow_raw.get("edges"))),
    )
    return team_class.model_construct(
        name=_text(data.get("name")),
        schemas={n: SchemaSpec.model_construct() for n in _names(data, "schemas")},
        models=dict.fromkeys(_names(data, "models"), "scripted"),
        tools={n: ToolSpec.model_construct() for n in _names(data, "tools")},
        agents=agents,
        flow=flow,
        guards=GuardSpec(),
        checkpoint=CheckpointSpec(),
    )


def _names(data: dict[str, Any], section: str) -> list[str]:
    found = data.get(section)
    return [n for n in found if isinstance(n, str)] if isinstance(found, dict) else []


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _MISSING


def _optional(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _valid(model: type[BaseModel], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def _agent(raw: Any) -> AgentSpec:
    found = _valid(AgentSpec, raw)
    if found is not None:
        return found  # type: ignore[no-any-return]
    raw = raw if isinstance(raw, dict) else {}
    tools = tuple(t for t in _items(raw.get("tools")) if isinstance(t, str))
    return AgentSpec.model_construct(
        id=_text(raw.get("id")),
        reports_to=_optional(raw.get("reports_to")),
        tools=tools,
        input=_optional(raw.get("input")),
        model=_optional(raw.get("model")),
    )


def _edge(raw: Any) -> EdgeSpec:
    found = _valid(EdgeSpec, raw)
    if found is not None:
        return found  # type: ignore[no-any-return]
    raw = raw if isinstance(raw, dict) else {}
    return EdgeSpec.model_construct(
        from_=_text(raw.get("from")),
        to=_text(raw.get("to")),
        schema_name=_text(raw.get("schema")),
        when=_valid(WhenSpec, raw.get("when")),
    )
