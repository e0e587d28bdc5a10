"""The team a run ran under: rebuilt from the definition its record is pinned to when the
team file changed since, so its trace reads every step it took."""

from __future__ import annotations

from corral.manifest import TeamPlan, TeamSpec
from corral.workspace import RunRecord


def pinned_plan(plan: TeamPlan, record: RunRecord) -> TeamPlan | None:
    """``plan`` if the run ran under it; else the plan of the definition the run is pinned
    to, its functions and modules found from ``plan``'s team file as now. ``None`` when
    that definition is not kept (an older run) or no longer builds (a module it names is
    gone)."""
    if record.fingerprint is None or record.fingerprint == plan.fingerprint:
        return plan
    if record.definition is None:
        return None
    try:
        then = TeamSpec.model_validate({**record.definition, "source": plan.source}).plan
    except Exception:  # any reason it no longer builds: the caller says what it reads
        return None
    return then if then.fingerprint == record.fingerprint else None
