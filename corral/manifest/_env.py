"""``${NAME}`` in model params: each must name a set environment variable.

The spec keeps the ``${NAME}`` form; the value is read only when the model is built, so a
secret never lands in a plan, checkpoint, run record, trace or log.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from corral.errors import Problem
from corral.models import env_refs

if TYPE_CHECKING:
    from corral.manifest._fields import TeamFields as Team


def env_problems(team: Team) -> list[Problem]:
    """A problem for every ``${NAME}`` in ``models.*.params`` whose variable is unset."""
    return [
        Problem(
            f"model {name!r} reads the environment variable {var!r}, which is not set",
            f"set {var} in the environment (export {var}=...) before loading the team",
            ("models", name, "params", *loc),
        )
        for name, spec in team.models.items()
        if not isinstance(spec, str)
        for loc, var in env_refs(spec.params)
        if var not in os.environ
    ]
