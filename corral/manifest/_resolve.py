"""Resolve a checked team: build schema classes, import functions and tools, load scripts.

Inline schema types use a tiny grammar (``str``, ``int``, ``float``, ``bool``,
``list[T]``, ``dict[str, T]``, another schema's name); nothing is ``eval``-ed.
Import paths ``module:attr`` are looked up next to the manifest first.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import networkx as nx
from pydantic import BaseModel, Field, TypeAdapter, create_model

from corral.errors import ManifestError, Problem, suggest
from corral.manifest._payloads import Payload
from corral.manifest._schema_checks import schema_problems
from corral.manifest._scripts import load_script
from corral.manifest._spec import FieldSpec, SchemaSpec

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from corral.manifest._fields import TeamFields as Team
    from corral.models import Script

MAX_TYPE_DEPTH = 16
_CONSTRAINTS: dict[str, frozenset[str]] = {
    "str": frozenset({"min_length", "max_length", "pattern"}),
    "int": frozenset({"ge", "le", "gt", "lt"}),
    "float": frozenset({"ge", "le", "gt", "lt"}),
    "list": frozenset({"min_length", "max_length"}),
    "dict": frozenset({"min_length", "max_length"}),
}
"""The constraints each kind of field takes (an enum, a bool or a schema takes none)."""
_SIMPLE: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
_REF = re.compile(r"\b[A-Z][A-Za-z0-9_]*\b")
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Resolved:
    """Everything a team refers to, ready to use."""

    base_dir: Path
    schemas: dict[str, type[BaseModel]]
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    tools: dict[str, BaseTool] = field(default_factory=dict)
    scripts: dict[str, Script] = field(default_factory=dict)
    graphs: dict[str, Any] = field(default_factory=dict)
    """Compiled LangGraph graphs of ``kind: graph`` nodes, by agent."""


def resolve(team: Team) -> tuple[Resolved | None, list[Problem]]:
    """Resolve ``team``; on any problem return ``None`` and every problem found."""
    base_dir = team.source.parent if team.source is not None else Path.cwd()
    problems: list[Problem] = []
    schemas = _build_schemas(team, base_dir, problems)
    functions: dict[str, Callable[..., Any]] = {}
    for i, agent in enumerate(team.agents):
        if agent.function is None:
            continue
        loc: Loc = ("agents", i, "function")
        found = (
            agent.function
            if callable(agent.function)
            else _import(agent.function, base_dir, loc, problems)
        )
        if found is not None and not callable(found):
            problems.append(
                Problem(
                    f"{agent.function!r} is not callable", "point `function` at a function", loc
                )
            )
        elif found is not None and _takes_payload(found, loc, problems):
            functions[agent.id] = found
    graphs: dict[str, Any] = {}
    for i, agent in enumerate(team.agents):
        if agent.graph is None:
            continue
        found = agent.graph
        if isinstance(found, str):
            found = _import(found, base_dir, ("agents", i, "graph"), problems)
        if found is not None and not (hasattr(found, "invoke") and hasattr(found, "get_graph")):
            problems.append(
                Problem(
                    f"{agent.graph!r} is not a compiled LangGraph graph",
                    "point `graph` at the result of StateGraph(...).compile()",
                    ("agents", i, "graph"),
                )
            )
        elif found is not None:
            graphs[agent.id] = found
    for i, agent in enumerate(team.agents):
        fallback = agent.fallback.function if agent.fallback is not None else None
        if fallback is None:
            continue
        found = (
            fallback
            if callable(fallback)
            else _import(fallback, base_dir, ("agents", i, "fallback", "function"), problems)
        )
        loc = ("agents", i, "fallback", "function")
        if found is not None and _takes_payload(found, loc, problems):
            functions[f"{agent.id}:fallback"] = found
    tools = _resolve_tools(team, base_dir, problems)
    scripts = _load_scripts(team, base_dir, problems)
    if not problems:
        problems += schema_problems(team, schemas)
    if problems:
        return None, problems
    return Resolved(base_dir, schemas, functions, tools, scripts, graphs), []


def _takes_payload(function: Callable[..., Any], loc: Loc, problems: list[Problem]) -> bool:
    """Whether ``function`` can be called with one payload, as a function node calls it
    (a problem at ``loc`` if not; a signature Python cannot read is given the benefit)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(object())
    except TypeError as exc:
        problems.append(
            Problem(
                f"function {getattr(function, '__name__', function)!r}{signature} cannot be "
                f"called with one payload ({exc})",
                "give it one parameter for the payload: def name(payload): ...",
                loc,
            )
        )
        return False
    return True


def _import(path: str, base_dir: Path, loc: Loc, problems: list[Problem]) -> Any:
    module_name, _, attr = path.partition(":")
    try:
        module = _load_module(module_name, base_dir)
        target: Any = module
        for part in attr.split("."):
            target = getattr(target, part)
    except (Exception, SystemExit) as exc:  # an import runs user code: the user's to see
        problems.append(
            Problem(
                f"cannot import {path!r} ({type(exc).__name__}: {exc})",
                "put the module's exit under `if __name__ == '__main__':`"
                if isinstance(exc, SystemExit)
                else f"check the path; modules are looked up in {base_dir} first, then on sys.path",
                loc,
            )
        )
        return None
    return target


def _load_module(name: str, base_dir: Path) -> ModuleType:
    """The module ``name`` beside the team file if it is there, else from ``sys.path``.

    A local module is imported as a submodule of a package made for ``base_dir``
    (``_corral_local_<digest>``), so a package's relative imports work and two team
    folders with same-named modules or packages never share an entry in ``sys.modules``.
    """
    here = base_dir.joinpath(*name.split("."))
    if not (here.with_suffix(".py").is_file() or (here / "__init__.py").is_file()):
        return importlib.import_module(name)
    folder = base_dir.resolve()
    root = f"_corral_local_{hashlib.sha1(str(folder).encode()).hexdigest()[:12]}"
    if root not in sys.modules:
        spec = importlib.machinery.ModuleSpec(root, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        sys.modules.setdefault(root, importlib.util.module_from_spec(spec))
    try:
        return importlib.import_module(f"{root}.{name}")
    except ImportError as exc:  # say the user's module names, not the made-up package's
        if type(exc) not in (ImportError, ModuleNotFoundError) or root not in str(exc):
            raise
        said = str(exc).replace(f"{root}.", "")
        raise type(exc)(said, name=exc.name, path=exc.path) from None


def _build_schemas(
    team: Team, base_dir: Path, problems: list[Problem]
) -> dict[str, type[BaseModel]]:
    built: dict[str, type[BaseModel]] = {}
    order: nx.DiGraph[str] = nx.DiGraph()
    for name, spec in team.schemas.items():
        order.add_node(name)
        for fname, fspec in (spec.fields or {}).items():
            for ref in _REF.findall(fspec.type):
                if ref in team.schemas:
                    order.add_edge(ref, name)
                else:
                    problems.append(
                        Problem(
                            f"field {fname!r} of schema {name} has unknown type {ref!r}",
                            "use str, int, float, bool, list[T], dict[str, T] or a schema name; "
                            + suggest(ref, team.schemas),
                            ("schemas", name, "fields", fname, "type"),
                        )
                    )
    try:
        names = list(nx.topological_sort(order))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(order)
        problems.append(
            Problem(
                "schemas refer to each other in a loop: "
                + " -> ".join(a for a, _ in cycle)
                + f" -> {cycle[0][0]}",
                "break the loop; a payload schema cannot contain itself",
                ("schemas", cycle[0][1]),
            )
        )
        return built
    for name in names:
        model = _schema_class(name, team.schemas[name], built, base_dir, problems)
        if model is not None:
            built[name] = model
    return built


def _schema_class(
    name: str,
    spec: SchemaSpec,
    built: dict[str, type[BaseModel]],
    base_dir: Path,
    problems: list[Problem],
) -> type[BaseModel] | None:
    if spec.model is not None:
        return spec.model
    if spec.import_ is not None:
        found = _import(spec.import_, base_dir, ("schemas", name, "import"), problems)
        if found is not None and not (isinstance(found, type) and issubclass(found, BaseModel)):
            problems.append(
                Problem(
                    f"{spec.import_!r} is not a pydantic model class",
                    "point `import` at a pydantic BaseModel subclass",
                    ("schemas", name, "import"),
                )
            )
            return None
        return found
    fields: dict[str, Any] = {}
    for fname, fspec in (spec.fields or {}).items():
        try:
            fields[fname] = _field(fspec, built)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(
                Problem(
                    f"field {fname!r} of schema {name}: {exc}",
                    "fix the field's type or constraints",
                    ("schemas", name, "fields", fname),
                )
            )
    try:
        return create_model(name, __base__=Payload, __doc__=spec.description, **fields)
    except Exception as exc:  # pydantic rejects a constraint that does not fit the type
        problems.append(
            Problem(
                f"schema {name} cannot be built: {exc}".split("\n")[0],
                "use constraints that fit each field's type "
                "(min_length for text and lists, ge/le for numbers)",
                ("schemas", name),
            )
        )
        return None


def _field(spec: FieldSpec, built: dict[str, type[BaseModel]]) -> tuple[Any, Any]:
    annotation: Any = Literal[spec.enum] if spec.enum else _parse_type(spec.type, built)
    constraints = {
        k: v
        for k, v in spec.model_dump(
            include={"min_length", "max_length", "ge", "le", "gt", "lt", "pattern"}
        ).items()
        if v is not None
    }
    kind = "enum" if spec.enum else spec.type.strip().split("[", 1)[0]
    fits = _CONSTRAINTS.get(kind, frozenset())
    wrong = sorted(set(constraints) - fits)
    if wrong:
        allowed = ", ".join(sorted(fits)) or "none"
        raise ValueError(
            f"{', '.join(wrong)} does not apply to a {kind} field (for {kind}: {allowed})"
        )
    impossible = _impossible(spec)
    if impossible is not None:
        raise ValueError(f"{impossible}, so no value can meet the constraints")
    if not spec.required:
        annotation = annotation | None
    default: Any = spec.default if (spec.default is not None or not spec.required) else ...
    if default is not ...:
        TypeAdapter(Annotated[annotation, Field(**constraints)]).validate_python(default)
    return annotation, Field(default, description=spec.description, **constraints)


def _impossible(spec: FieldSpec) -> str | None:
    """Why no value meets ``spec``'s bounds (``ge: 5, le: 1``, ``ge: .nan``), if none can."""
    bounds = {k: v for k in ("ge", "gt", "le", "lt") if (v := getattr(spec, k)) is not None}
    for key, value in bounds.items():
        if math.isnan(value):  # NaN compares false with every number
            return f"{key}: {value} is not a number"
    for low_key in sorted(bounds.keys() & {"ge", "gt"}):
        for high_key in sorted(bounds.keys() & {"le", "lt"}):
            low, high = bounds[low_key], bounds[high_key]
            if low > high or (low == high and (low_key, high_key) != ("ge", "le")):
                return f"{low_key}: {low} and {high_key}: {high} leave no number between"
    least, most = spec.min_length, spec.max_length
    if least is not None and most is not None and least > most:
        return f"min_length {least} is greater than max_length {most}"
    return None


def _parse_type(text: str, built: dict[str, type[BaseModel]]) -> Any:
    text = text.strip()
    if text.count("[") > MAX_TYPE_DEPTH:
        raise ValueError(f"the type nests more than {MAX_TYPE_DEPTH} levels deep")
    if text in _SIMPLE:
        return _SIMPLE[text]
    if text in built:
        return built[text]
    if (m := re.fullmatch(r"list\[(.+)\]", text)) is not None:
        return list[_parse_type(m.group(1), built)]  # type: ignore[misc]
    if (m := re.fullmatch(r"dict\[\s*str\s*,(.+)\]", text)) is not None:
        return dict[str, _parse_type(m.group(1), built)]  # type: ignore[misc]
    raise ValueError(
        f"unknown type {text!r} (use str, int, float, bool, list[T], dict[str, T] or a schema name)"
    )


def _resolve_tools(team: Team, base_dir: Path, problems: list[Problem]) -> dict[str, BaseTool]:
    tools: dict[str, BaseTool] = {}
    if not team.tools:
        return tools
    from langchain_core.tools import BaseTool, StructuredTool  # only a team with tools needs it

    for name, spec in team.tools.items():
        loc: Loc = ("tools", name, "import")
        found = (
            spec.tool
            if spec.tool is not None
            else _import(spec.import_ or "", base_dir, loc, problems)
        )
        if isinstance(found, BaseTool):
            tools[name] = found
        elif callable(found):
            awaited = inspect.iscoroutinefunction(found)  # else LangChain calls it unawaited
            try:
                tools[name] = StructuredTool.from_function(
                    None if awaited else found,
                    coroutine=found if awaited else None,
                    name=name,
                    description=spec.description,
                )
            except (ValueError, TypeError) as exc:  # no docstring, a signature it cannot read
                problems.append(
                    Problem(
                        f"tool {name!r} cannot be made a LangChain tool: {exc}".rstrip("."),
                        "give the function a docstring or the tool a `description:`",
                        loc,
                    )
                )
        elif found is not None:
            problems.append(
                Problem(
                    f"tool {name!r} is neither a LangChain tool nor callable",
                    "point `import` at a @tool function or a BaseTool",
                    loc,
                )
            )
    return tools


def _load_scripts(team: Team, base_dir: Path, problems: list[Problem]) -> dict[str, Script]:
    scripts: dict[str, Script] = {}
    for name, spec in team.models.items():
        if isinstance(spec, str) or spec.script is None:
            continue
        path = base_dir / spec.script
        if not path.is_file():
            problems.append(
                Problem(
                    f"script file {spec.script!r} does not exist (looked in {base_dir})",
                    "give a path relative to the manifest",
                    ("models", name, "script"),
                )
            )
            continue
        try:
            scripts[name] = load_script(path, [agent.id for agent in team.agents])
        except ManifestError as exc:
            problems += exc.problems
    return scripts
