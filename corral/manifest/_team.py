"""``TeamSpec``: the whole team definition, validated at construction, planned on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import PrivateAttr, ValidationError, model_validator

from corral.errors import ManifestError
from corral.manifest._checks import check_team
from corral.manifest._compile import compile_plan
from corral.manifest._fields import TeamFields
from corral.manifest._resolve import Resolved, resolve
from corral.manifest._salvage import salvage_problems
from corral.manifest._yaml import pydantic_problem

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

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # one error hierarchy for YAML and Python alike
            problems = [pydantic_problem(e, type(self), data) for e in exc.errors()]
            raise ManifestError(problems + salvage_problems(type(self), data, problems)) from None

    @model_validator(mode="after")
    def _check_whole_team(self) -> TeamSpec:
        problems = check_team(self)
        if not problems:
            resolved, problems = resolve(self)
            self._resolved = resolved
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

    @property
    def plan(self) -> TeamPlan:
        """The compiled plan: every effective per-agent setting, resolved once."""
        if self._plan is None:
            self._plan = compile_plan(self, self.resolved)
        return self._plan
