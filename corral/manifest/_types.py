"""The building blocks of every spec: the frozen base model and the name patterns."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
SchemaName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9_]{0,62}$")]
ImportPath = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$", max_length=300)
]
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]\w{0,62}$")]
Scalar = str | int | float | bool
END = "END"
"""The destination of a terminal edge: the run ends with that edge's payload as output."""

_SPEC_CONFIG = ConfigDict(
    extra="forbid",
    frozen=True,
    validate_by_name=True,
    validate_by_alias=True,
    use_attribute_docstrings=True,  # field docstrings are the JSON Schema's descriptions
)


class Spec(BaseModel):
    """Base of every spec: frozen, unknown keys refused, field docstrings documented."""

    model_config = _SPEC_CONFIG
