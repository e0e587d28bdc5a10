"""``Team``: the builder users meet. A frozen team spec that compiles to an ``App``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.manifest import TeamSpec
from corral.manifest import load_team as _load

if TYPE_CHECKING:
    from corral.graphs._app import App


class Team(TeamSpec):
    """A team of agents: the builder. ``compile()`` turns it into a runnable ``App``.

    Built from YAML by ``load_team(path)`` or directly in Python; both give an equal
    object. Construction checks the whole team and raises ``ManifestError`` listing
    every problem found.
    """

    def compile(self, *, db: str | Path | None = None, **options: Any) -> App:
        """Wire the runtime once and open the workspace.

        Args:
            db: SQLite file for checkpoints and run records. Defaults to the
                manifest's ``checkpoint.db``, else ``.corral/corral.db``.
            **options: passed to ``App`` (for example ``chat_models`` overrides, or
                ``tracer_provider``: the OpenTelemetry provider spans go to).
        """
        from corral.graphs._app import App  # the runtime loads when a team is compiled

        return App(self, db=db, **options)

    def draw(
        self,
        format: str = "mermaid",
        *,
        highlight: Sequence[str] = (),
        scale: float | None = None,
        direction: str = "TB",
        legend: bool = True,
    ) -> str | bytes:
        """The team drawn offline from its plan: mermaid, dot, svg, png (bytes), json or
        graphml. No runtime is built.

        Args:
            format: what to draw in.
            highlight: a run's path (``result.path``): its agents and the edges it took.
            scale: size multiplier for SVG and PNG (default 1 for SVG, 2 for PNG).
            direction: ``TB`` (top to bottom) or ``LR`` (left to right).
            legend: add a key to the drawing.

        Raises:
            InputError: an unknown format or direction, or a scale out of range.
        """
        from corral.graphs._export import render

        return render(self.plan, format, highlight, scale=scale, direction=direction, legend=legend)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from corral.graphs._export import mimebundle

        return mimebundle(self.plan)


def load_team(path: str | Path) -> Team:
    """Load, validate and resolve a team file.

    Raises:
        ManifestError: listing every problem found, each with ``file:line`` and a fix.
    """
    return _load(path, Team)
