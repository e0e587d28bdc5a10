"""Checks that need the payload schemas built: routes, confidence fields, joins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from corral.errors import Problem, suggest

if TYPE_CHECKING:
    from corral.manifest._fields import TeamFields as Team

Loc = tuple[str | int, ...]


def schema_problems(team: Team, schemas: dict[str, type[BaseModel]]) -> list[Problem]:
    """Every problem of ``team`` that shows only once its schemas are built."""
    return (
        check_routes(team, schemas) + check_confidence(team, schemas) + check_joins(team, schemas)
    )


def check_routes(team: Team, schemas: dict[str, type[BaseModel]]) -> list[Problem]:
    """``when`` fields exist, their values fit the field, and enum values are all routed."""
    problems: list[Problem] = []
    routed: dict[tuple[str, str], set[Any]] = {}
    has_default = {e.from_ for e in team.flow.edges if e.when is None}
    for k, edge in enumerate(team.flow.edges):
        if edge.when is None:
            continue
        model = schemas[edge.schema_name]
        info = model.model_fields.get(edge.when.field)
        loc: Loc = ("flow", "edges", k, "when", "field")
        if info is None:
            problems.append(
                Problem(
                    f"{edge.schema_name} has no field {edge.when.field!r} to route on",
                    f"route on one of its fields; {suggest(edge.when.field, model.model_fields)}",
                    loc,
                )
            )
            continue
        annotation: Any = (
            Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        )
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        for value in edge.when.values:
            try:  # strict: routing compares the value as written ('1' is never 1)
                adapter.validate_python(value, strict=True)
            except ValidationError as exc:
                problems.append(
                    Problem(
                        f"{edge.when.field!r} can never be {value!r}: " + exc.errors()[0]["msg"],
                        "route on a value the field can take, of its type (unquoted for a "
                        "number or a boolean)",
                        ("flow", "edges", k, "when"),
                    )
                )
        routed.setdefault((edge.from_, edge.when.field), set()).update(edge.when.values)
    for (source, fname), values in routed.items():
        if source in has_default:
            continue
        k = next(i for i, e in enumerate(team.flow.edges) if e.from_ == source)
        annotation = schemas[team.flow.edges[k].schema_name].model_fields[fname].annotation
        if annotation is bool:
            choices: tuple[Any, ...] = (True, False)
        elif get_origin(annotation) is Literal:
            choices = get_args(annotation)
        else:
            problems.append(
                Problem(
                    f"{source!r} routes on {fname!r}, which can take values no edge names",
                    "add a last edge without `when` as the default, or make the field an enum",
                    ("flow", "edges", k),
                )
            )
            continue
        missing = [v for v in choices if v not in values]
        if missing:
            problems.append(
                Problem(
                    f"{source!r} routes on {fname!r} but sends {missing} nowhere",
                    "add edges for those values, or a last edge without `when` as the default",
                    ("flow", "edges", k),
                )
            )
    return problems


def check_confidence(team: Team, schemas: dict[str, type[BaseModel]]) -> list[Problem]:
    """A ``min_confidence`` names a numeric field of the payload it reads."""
    problems: list[Problem] = []
    wanted: list[tuple[str, str, Loc]] = [
        (e.schema_name, e.confidence_field, ("flow", "edges", k, "min_confidence"))
        for k, e in enumerate(team.flow.edges)
        if e.min_confidence is not None
    ]
    parallel = {s.from_ for s in team.flow.parallel} | {b for s in team.flow.parallel for b in s.to}
    for i, agent in enumerate(team.agents):
        if agent.min_confidence is not None and agent.id in parallel:
            problems.append(
                Problem(
                    f"min_confidence is not checked on {agent.id!r}, which fans out or is a "
                    "branch of a parallel step (its answer goes on to every branch or the join "
                    "at once)",
                    "set min_confidence on the join agent, or on an edge after it",
                    ("agents", i, "min_confidence"),
                )
            )
        elif agent.min_confidence is not None:
            out = agent.output or next(
                e.schema_name for e in team.flow.edges if e.from_ == agent.id
            )
            wanted.append((out, agent.confidence_field, ("agents", i, "min_confidence")))
    for schema, name, loc in wanted:
        info = schemas[schema].model_fields.get(name)
        if info is None or info.annotation not in (float, int):
            problems.append(
                Problem(
                    f"min_confidence reads field {name!r} of {schema}, which "
                    + ("it does not have" if info is None else "is not a number"),
                    "set `confidence_field` to a float field of the payload, or add one",
                    loc,
                )
            )
    return problems


def check_joins(team: Team, schemas: dict[str, type[BaseModel]]) -> list[Problem]:
    """A join agent's input has one field per branch, typed by that branch's output; the
    payload of a parallel step is what the fanning agent answers and the branches take."""
    problems: list[Problem] = []
    agents = {a.id: a for a in team.agents}
    for k, step in enumerate(team.flow.parallel):
        loc: Loc = ("flow", "parallel", k)
        fanning = agents[step.from_]
        if fanning.output is not None and fanning.output != step.schema_name:
            problems.append(
                Problem(
                    f"{step.from_!r} declares output {fanning.output} but its parallel step "
                    f"carries {step.schema_name}",
                    "make them the same schema",
                    (*loc, "schema"),
                )
            )
        for branch in step.to:
            declared = agents[branch].input
            if declared is not None and declared != step.schema_name:
                problems.append(
                    Problem(
                        f"branch {branch!r} expects {declared} but the step carries "
                        f"{step.schema_name}",
                        "make the branch's `input` the step's schema, or remove it",
                        (*loc, "to"),
                    )
                )
        joined = schemas[agents[step.join].input or ""].model_fields
        wanted = {b: schemas[agents[b].output or ""] for b in step.to}
        if set(joined) != set(wanted) or any(
            joined[b].annotation is not model for b, model in wanted.items()
        ):
            shape = ", ".join(f"{b}: {m.__name__}" for b, m in wanted.items())
            problems.append(
                Problem(
                    f"join agent {step.join!r} takes {agents[step.join].input}, whose fields "
                    f"are not the branches' answers ({shape})",
                    f"give {agents[step.join].input} exactly the fields {shape}",
                    (*loc, "join"),
                )
            )
    return problems
