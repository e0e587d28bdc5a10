"""What changed between two team definitions, and whether a paused run can go on.

Agents are compared by id, edges by ``from -> to``, parallel steps by the agent that
fans out and schemas by name, so reordering a list is no change. A change is
*incompatible* when something a run started under the old definition needs is changed
or removed: a schema, an edge's schema or condition, a parallel step, an agent (or its
kind, input, output, function or graph), the flow's entry, input or output, or the
team's name. Everything else (instructions, roles, constraints, budgets, guards,
models, tools, review settings, added agents, edges and schemas) is compatible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

_AGENT_NEEDS = frozenset({"kind", "input", "output", "function", "graph"})
_EDGE_NEEDS = frozenset({"schema", "when"})
_FLOW_NEEDS = frozenset({"entry", "input", "output"})


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: where (``agents.writer.instructions``), how, and its values."""

    where: str
    how: Literal["added", "removed", "changed"]
    compatible: bool
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.how]
        said = {
            "added": f": {_short(self.new)}",
            "removed": "",
            "changed": f": {_short(self.old)} -> {_short(self.new)}",
        }[self.how]
        kind = "compatible" if self.compatible else "incompatible"
        return f"{sign} {self.where}{said} ({kind})"

    def to_dict(self) -> dict[str, Any]:
        """The change as JSON."""
        return {
            "where": self.where,
            "how": self.how,
            "compatible": self.compatible,
            "old": self.old,
            "new": self.new,
        }


def diff_definitions(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new`` (``TeamPlan.definition``), in path order."""
    changes: list[Change] = []
    _walk(_keyed(old), _keyed(new), (), changes)
    return changes


def _keyed(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The definition with its lists of named things as mappings by name."""
    data = dict(definition)
    data["agents"] = {a["id"]: a for a in data.get("agents") or ()}
    flow = dict(data.get("flow") or {})
    flow["edges"] = {f"{e['from']} -> {e['to']}": e for e in flow.get("edges") or ()}
    flow["parallel"] = {p["from"]: p for p in flow.get("parallel") or ()}
    data["flow"] = flow
    return data


def _walk(old: Any, new: Any, path: tuple[str, ...], out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            here = (*path, str(key))
            if key not in new:
                gone = _compatible(here, "removed")
                out.append(Change(_dotted(here), "removed", gone, old=old[key]))
            elif key not in old:
                out.append(Change(_dotted(here), "added", _compatible(here, "added"), new=new[key]))
            else:
                _walk(old[key], new[key], here, out)
    elif old != new:
        out.append(Change(_dotted(path), "changed", _compatible(path, "changed"), old, new))


def _compatible(path: tuple[str, ...], how: str) -> bool:
    head, rest = path[0], path[1:]
    whole = how != "changed" and len(rest) == (2 if head == "flow" else 1)
    if head == "name":
        return False
    if head == "schemas":
        return whole and how == "added"
    if head == "agents":
        return how == "added" if whole else rest[1] not in _AGENT_NEEDS
    if head != "flow" or not rest:
        return head != "flow"
    if rest[0] == "edges":
        return how == "added" if whole else rest[2] not in _EDGE_NEEDS
    if rest[0] == "parallel":
        return whole and how == "added"
    return rest[0] not in _FLOW_NEEDS


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(f"[{p}]" if " " in p else p for p in path).replace(".[", "[")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."
