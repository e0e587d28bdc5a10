"""``TeamSpec``: the whole team definition, validated at construction, planned on demand."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, PrivateAttr, ValidationError, model_validator

from corral.errors import InputError, ManifestError, Problem
from corral.manifest._checks import check_team
from corral.manifest._compile import compile_plan
from corral.manifest._costs import cost_problems
from corral.manifest._env import env_problems
from corral.manifest._fields import TeamFields
from corral.manifest._grants import grant_problems
from corral.manifest._problems import pydantic_problems
from corral.manifest._resolve import Resolved, resolve
from corral.manifest._salvage import salvage_problems
from corral.manifest._yaml import Located
from corral.models import model_problems

if TYPE_CHECKING:
    from corral.manifest._plan import TeamPlan


class TeamSpec(TeamFields):
    """A team of agents as a frozen spec. ``plan`` is its compiled form (the runtime's input).

    Built from YAML by ``load_team(path)`` or directly in Python; both give an equal
    object. Construction checks the whole team and raises ``ManifestError`` listing
    every problem found.
    """

    _resolved: Resolved | None = PrivateAttr(default=None)
    _plan: TeamPlan | None = PrivateAttr(default=None)
    _lines: Located | None = PrivateAttr(default=None)
    """The lines of the team file it was loaded from (set by ``load_team``)."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # one error hierarchy for YAML and Python alike
            problems = pydantic_problems(exc, type(self), data)
            if isinstance(one := data.get("agents"), BaseModel):  # not its fields, one each
                fix = "give a list of agents, even of one: agents=[...]"
                wrong = Problem(f"agents is one {type(one).__name__}, not a list", fix, ("agents",))
                problems = [wrong, *(p for p in problems if p.loc[:1] != ("agents",))]
            raise ManifestError(problems + salvage_problems(type(self), data, problems)) from None

    @model_validator(mode="after")
    def _check_whole_team(self) -> TeamSpec:
        problems = [
            *check_team(self),
            *cost_problems(self),
            *env_problems(self),
            *grant_problems(self),
        ]
        if not problems:
            resolved, problems = resolve(self)
            self._resolved = resolved
        else:  # the rest at once too: schemas, imports, tools and scripts
            problems += _more(self, problems)
        if problems:
            raise ManifestError(problems)
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TeamSpec):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @property
    def resolved(self) -> Resolved:
        """Schemas as pydantic classes, functions, tools and models, resolved once."""
        assert self._resolved is not None  # set by the validator or it raised
        return self._resolved

    def locate(self, problems: list[Problem]) -> list[Problem]:
        """``problems`` at ``file:line`` in the team file, if the team came from one."""
        return self._lines.locate(problems) if self._lines is not None else problems

    def check_models(self, given: Collection[str] = ()) -> None:
        """Raise ``ManifestError`` for what building the team's chat models would refuse
        (see ``model_problems``), at ``file:line``; models named in ``given`` are supplied
        by the caller and not checked."""
        plan, names = self.plan, ("model", "model_key", "fallback_model", "fallback_model_key")
        known = {*plan.models, *(getattr(a, n) for a in plan.agents.values() for n in names)}
        if unknown := sorted(set(given) - known):  # else the model the caller meant is unused
            uses = ", ".join(sorted(k for k in known if k)) or "none"
            raise InputError(
                f"chat_models names {unknown[0]!r}, a model no agent uses (models: {uses})",
                field="chat_models",
            )
        problems = [
            problem
            for model in self.plan.models.values()
            if model.name not in given
            for problem in model_problems(model.name, model.use, model.params, model.loc)
        ]
        if problems:
            raise ManifestError(self.locate(problems))

    @property
    def plan(self) -> TeamPlan:
        """The compiled plan: every effective per-agent setting, resolved once."""
        if self._plan is None:
            self._plan = compile_plan(self, self.resolved)
        return self._plan


def _more(team: TeamSpec, found: list[Problem]) -> list[Problem]:
    """What resolving ``team`` finds besides the reference problems ``found`` (best
    effort: a team with broken references may not resolve far)."""
    try:
        _, more = resolve(team)
    except Exception:
        return []
    said = {p.loc for p in found}
    return [p for p in more if p.loc not in said]
